/*
 * Crash guard for the dashboard: while armed, a crash signal (SIGILL, SIGSEGV, SIGBUS,
 * SIGABRT, SIGFPE, SIGTRAP) first calls endwin() so the terminal leaves curses mode, then
 * re-raises the signal with its default action (core dump or termination as usual).
 */
#ifndef NBDTOP_CNCURSES_SHIM_H
#define NBDTOP_CNCURSES_SHIM_H

/* Installs the handlers (once; later calls do nothing) and arms the guard. */
void nbdtop_crash_guard_arm(void);

/* Disarms the guard after the terminal was restored; the handlers stay but only re-raise. */
void nbdtop_crash_guard_disarm(void);

/* Whether the guard is armed (for tests). */
int nbdtop_crash_guard_is_armed(void);

#endif
