/*
 * Crash guard for the dashboard: while armed, a crash signal (SIGILL, SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE, SIGTRAP) first calls endwin() so the terminal leaves curses mode, then
 * re-raises the signal with its default action (core dump or termination as usual).
 *
 * Terminal guard: gives the terminal back without ncurses, from any thread or a signal
 * handler (only write() and tcsetattr(), both async-signal-safe), for a process that is
 * about to exit while the dashboard may still be drawing (a second Ctrl-C).
 */
#ifndef NBDTOP_CNCURSES_SHIM_H
#define NBDTOP_CNCURSES_SHIM_H

/* Installs the handlers (once; later calls do nothing) and arms the guard. */
void nbdtop_crash_guard_arm(void);

/* Disarms the guard after the terminal was restored; the handlers stay but only re-raise. */
void nbdtop_crash_guard_disarm(void);

/* Whether the guard is armed (for tests). */
int nbdtop_crash_guard_is_armed(void);

/* Saves the terminal's modes (termios of stdin); call before curses changes them. */
void nbdtop_terminal_guard_save_modes(void);

/* Copies the terminal's reset sequences from terminfo (call once curses has loaded it) and
 * arms the guard. */
void nbdtop_terminal_guard_arm(void);

/* Disarms the guard after curses gave the terminal back itself. */
void nbdtop_terminal_guard_disarm(void);

/* When armed: disarms, writes the reset sequences (leaving the alternate screen) to stdout
 * and puts the saved modes back; returns 1. Otherwise does nothing and returns 0. */
int nbdtop_terminal_guard_restore(void);

#endif
