#include "CNCursesShim.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

/* Only tigetstr() is needed here; declared directly, as CrashGuard.c declares endwin(), so
 * this file does not depend on the wide-character configuration of <ncurses.h>. */
extern char *tigetstr(const char *capname);

/* Room for the terminal's reset sequences (a few dozen bytes on any real terminal). */
#define SEQUENCES_CAPACITY 256

static struct termios saved_modes;
static volatile sig_atomic_t modes_saved = 0;
static char sequences[SEQUENCES_CAPACITY];
static size_t sequences_length = 0;
/* Read and cleared with an atomic exchange, so that two threads (or a thread and a signal
 * handler) never both restore. */
static int armed = 0;

void nbdtop_terminal_guard_save_modes(void) {
    modes_saved = tcgetattr(STDIN_FILENO, &saved_modes) == 0;
}

/* Appends the terminfo string `capname` (when the terminal has one) to `sequences`. */
static void append_capability(const char *capname) {
    const char *value = tigetstr(capname);
    /* tigetstr returns (char *)-1 for a name that is not a string capability. */
    if (value == NULL || value == (const char *)-1) return;
    size_t length = strlen(value);
    if (sequences_length + length > SEQUENCES_CAPACITY) return;
    memcpy(sequences + sequences_length, value, length);
    sequences_length += length;
}

void nbdtop_terminal_guard_arm(void) {
    sequences_length = 0;
    /* Attributes off, cursor shown, keypad back in normal mode, then leave the alternate
     * screen: what endwin() sends. */
    append_capability("sgr0");
    append_capability("cnorm");
    append_capability("rmkx");
    /* A terminal with mouse keys had mouse reporting switched on (xterm's modes, as
     * ncurses sets them): off again, or clicks would arrive as text at the shell. */
    const char *mouse = tigetstr("kmous");
    if (mouse != NULL && mouse != (const char *)-1) {
        static const char mouse_off[] = "\033[?1006l\033[?1000l";
        if (sequences_length + sizeof mouse_off - 1 <= SEQUENCES_CAPACITY) {
            memcpy(sequences + sequences_length, mouse_off, sizeof mouse_off - 1);
            sequences_length += sizeof mouse_off - 1;
        }
    }
    append_capability("rmcup");
    __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
}

void nbdtop_terminal_guard_disarm(void) { __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST); }

int nbdtop_terminal_guard_restore(void) {
    if (!__atomic_exchange_n(&armed, 0, __ATOMIC_SEQ_CST)) return 0;
    size_t written = 0;
    while (written < sequences_length) {
        ssize_t result = write(STDOUT_FILENO, sequences + written, sequences_length - written);
        if (result < 0) {
            if (errno == EINTR) continue;
            break;
        }
        written += (size_t)result;
    }
    if (modes_saved) tcsetattr(STDIN_FILENO, TCSADRAIN, &saved_modes);
    return 1;
}
