#!/usr/bin/env bash
# virt-v2v end to end through nbdtop (make e2e-v2v).
#
# Builds a small Debian guest here (debootstrap from this machine's own apt source, then
# virt-make-fs and grub; cached in V2V_CACHE), and converts it with
#   virt-v2v -i disk GUEST -o local -os OUT -of raw
# with nbdtop first on PATH under the name nbdcopy. Every copy virt-v2v asks for runs
# through nbdtop's nbdcopy personality; right after it succeeds, the real nbdcopy copies
# the same source (virt-v2v still serves it) into a reference file. Checks:
#   - virt-v2v exits 0 and its output disk equals the reference, byte for byte: the disk
#     nbdcopy would have written from the same converted guest;
#   - `nbdtop ls --json`, polled while the import ran, listed the copy running with the
#     URIs virt-v2v passed, and lists its result (done, exit 0) after it;
#   - `nbdtop attach`, in a private tmux while the copy ran, showed its lanes, its rate
#     and both URIs.
#
# The libguestfs appliance boots under TCG: on these machines it hangs at "Booting from
# ROM..." with KVM (V2V_KVM=1 tries KVM anyway).
#
# usage: Tests/V2V/e2e-v2v.sh NBDTOP_BIN
# env:   V2V_CACHE (guest image folder, default .build-v2v), V2V_KEEP=1 (keep the work folder)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:?usage: e2e-v2v.sh NBDTOP_BIN}")
cache=${V2V_CACHE:-$here/../../.build-v2v}
mkdir -p "$cache"; cache=$(realpath "$cache")
work=$(mktemp -d /tmp/nbdtop-v2v.XXXXXX)
chmod 755 "$work"
tmux_socket=$work/tmux.sock
cleanup() {
  tmux -S "$tmux_socket" kill-server 2>/dev/null || true
  for pid in $(jobs -p); do kill "$pid" 2>/dev/null || true; done
  if [ "${V2V_KEEP:-}" = 1 ]; then echo "work folder kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
fail() { echo "e2e-v2v: FAIL: $*" >&2; exit 1; }
step() { echo "e2e-v2v: $*"; }

export LIBGUESTFS_BACKEND=direct
[ "${V2V_KVM:-}" = 1 ] || export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
export XDG_RUNTIME_DIR=$work/run
mkdir -m 700 "$XDG_RUNTIME_DIR"

# --- The guest: Debian with a kernel, an initramfs and grub, on one MBR partition. ---
# The name carries the recipe's version: a changed recipe builds a new image.
guest=$cache/guest-3.img
if [ ! -s "$guest" ]; then
  [ "$(id -u)" = 0 ] || fail "building the guest needs root (debootstrap); or put an image at $guest"
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / { print $2; exit }' /etc/apt/sources.list 2>/dev/null || true)
  suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
  step "building a $suite guest from $mirror (a few minutes, once)"
  root=$work/root
  debootstrap --variant=minbase --include=linux-image-amd64,grub-pc,initramfs-tools,systemd-sysv \
    "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1 || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  echo '/dev/sda1 / ext4 defaults 0 1' > "$root/etc/fstab"
  echo v2vguest > "$root/etc/hostname"
  # virt-v2v rebuilds the initramfs with the virtio drivers it lists in
  # /etc/initramfs-tools/modules. With Debian's MODULES=most that copies every module
  # (hundreds of MB in the guest's /var/tmp, about 11 minutes under TCG) and filled the
  # disk; MODULES=list takes only the listed ones and the few the guest boots from.
  mkdir -p "$root/etc/initramfs-tools/conf.d"
  echo MODULES=list > "$root/etc/initramfs-tools/conf.d/v2v-small.conf"
  printf '%s\n' ext4 sd_mod ata_piix ahci virtio_blk virtio_scsi virtio_pci >> "$root/etc/initramfs-tools/modules"
  tar -C "$root" -cf "$work/root.tar" .
  rm -rf "$root"
  virt-make-fs --format=raw --partition=mbr --type=ext4 --size=+2G "$work/root.tar" "$work/guest.img"
  virt-customize -q -a "$work/guest.img" --run-command 'grub-install /dev/sda && update-grub' \
    --run-command 'head -c 1G /dev/urandom > /var/filler'
  # (The filler: data that is not zero, so the disk copy lasts long enough to be watched;
  # the guest alone copies in about a second, mostly holes. Written after grub-install: in
  # the tar it made virt-make-fs lay out a disk grub could not embed itself in.)
  mv "$work/guest.img" "$guest"
  rm -f "$work/root.tar"
fi

# --- nbdcopy on PATH: nbdtop, then the real nbdcopy into a reference. ---
real_nbdcopy=$(command -v nbdcopy) || fail "the real nbdcopy (libnbd-bin) is not installed"
mkdir -p "$work/personality" "$work/bin" "$work/out"
ln -s "$bin" "$work/personality/nbdcopy"
cat > "$work/bin/nbdcopy" <<WRAP
#!/bin/sh
# virt-v2v's nbdcopy: nbdtop under that name, watched by \`nbdtop attach\` in a private
# tmux from the moment \`nbdtop ls\` lists it until it ends; then the real nbdcopy copies
# the same source into a reference.
printf '%s\n' "\$*" >> "$work/nbdcopy.args"
n=\$(wc -l < "$work/nbdcopy.args")
"$work/personality/nbdcopy" "\$@" &
copy=\$!
attached="" frame=0
while kill -0 \$copy 2>/dev/null; do
  if [ -z "\$attached" ] && "$bin" ls --json 2>/dev/null | grep -q "\"pid\": *\$copy,"; then
    attached=\$copy
    tmux -S "$tmux_socket" -f /dev/null new-session -d -x 160 -y 40 \\
      "env TERM=xterm-256color LANG=C.UTF-8 XDG_RUNTIME_DIR=$XDG_RUNTIME_DIR $bin attach \$copy; sleep 30"
  fi
  if [ -n "\$attached" ]; then
    frame=\$((frame + 1))
    tmux -S "$tmux_socket" capture-pane -p > "$work/attach-\$n-\$frame.txt" 2>/dev/null || true
  fi
  sleep 0.1
done
wait \$copy || exit \$?
for word in "\$@"; do case \$word in -*) ;; *) source=\$word; break ;; esac; done
exec "$real_nbdcopy" "\$source" "$work/reference-\$n.img"
WRAP
chmod +x "$work/bin/nbdcopy"

# --- The import, watched. ---
step "virt-v2v -i disk $guest -o local -os $work/out -of raw (TCG: several minutes)"
PATH=$work/bin:$PATH virt-v2v -v -x -i disk "$guest" -o local -os "$work/out" -of raw -on v2vguest \
  > "$work/v2v.log" 2>&1 &
v2v=$!

# Every half second, what `nbdtop ls --json` says (the wrapper above runs the attach).
n=0
while kill -0 "$v2v" 2>/dev/null; do
  n=$((n + 1))
  "$bin" ls --json > "$work/ls-$n.json" 2>/dev/null || true
  # Before virt-v2v starts its copy the list is empty: keep only the answers that say something.
  [ "$(tr -d ' \n\t' < "$work/ls-$n.json")" != "[]" ] || rm -f "$work/ls-$n.json"
  sleep 0.5
done
wait "$v2v" || { tail -30 "$work/v2v.log"; fail "virt-v2v failed (log above)"; }
"$bin" ls --json > "$work/ls-after.json"
step "virt-v2v finished; nbdcopy ran $(wc -l < "$work/nbdcopy.args" 2>/dev/null || echo 0) time(s): $(cat "$work/nbdcopy.args" 2>/dev/null)"

# --- Checks. ---
[ -s "$work/nbdcopy.args" ] || fail "virt-v2v never ran nbdcopy"
[ "$(wc -l < "$work/nbdcopy.args")" = 1 ] || fail "expected one disk copy"
[ -s "$work/out/v2vguest-sda" ] || fail "no output disk in $work/out: $(ls "$work/out")"
cmp "$work/out/v2vguest-sda" "$work/reference-1.img" || fail "the disk written through nbdtop differs from nbdcopy's"
step "the output disk equals the real nbdcopy's copy of the same source ($(stat -c %s "$work/out/v2vguest-sda") bytes)"

python3 - "$work" <<'PY' || fail "nbdtop ls / attach (above)"
import glob, json, re, sys
work = sys.argv[1]
args = open(f"{work}/nbdcopy.args").read().split()
uris = [a for a in args if not a.startswith("-")][:2]
seen = []
for path in sorted(glob.glob(f"{work}/ls-[0-9]*.json")):
    try:
        seen += json.load(open(path))
    except ValueError:
        pass
running = [c for c in seen if c.get("mode") == "copy" and c.get("state") == "running"]
assert running, "nbdtop ls never listed the copy running"
assert [running[0]["src"], running[0]["dst"]] == uris, f"ls listed {running[0]['src']} -> {running[0]['dst']}, virt-v2v passed {uris}"
pid = running[0]["pid"]
after = [c for c in json.load(open(f"{work}/ls-after.json")) if c.get("pid") == pid]
assert after and after[0]["state"] == "done" and after[0].get("exit") == 0, f"ls after the import: {after}"
print(f"e2e-v2v: nbdtop ls listed pid {pid} running ({len(running)} times) and then done, exit 0")
screens = [open(p).read() for p in sorted(glob.glob(f"{work}/attach-*.txt"))]
live = [s for s in screens if re.search(r"lanes \d+/", s) and "/s" in s and all(u in s for u in uris)]
assert live, "nbdtop attach never showed the lanes, a rate and both URIs; last screen:\n" + (screens[-1] if screens else "(none)")
print("e2e-v2v: nbdtop attach showed it live:")
print(live[len(live) // 2])
PY
step "PASS"
