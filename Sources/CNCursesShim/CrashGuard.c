#include "CNCursesShim.h"

#include <signal.h>
#include <string.h>

/* Only endwin() is needed here; declared directly so this file does not depend on the
 * wide-character configuration of <ncurses.h>. */
extern int endwin(void);

static volatile sig_atomic_t armed = 0;
static volatile sig_atomic_t installed = 0;

static const int guarded_signals[] = { SIGILL, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGTRAP };

static void crash_handler(int signal_number) {
    if (armed) {
        armed = 0;
        endwin();
    }
    /* SA_RESETHAND already restored the default action; make sure, then re-raise. */
    struct sigaction fallback;
    memset(&fallback, 0, sizeof fallback);
    fallback.sa_handler = SIG_DFL;
    sigemptyset(&fallback.sa_mask);
    sigaction(signal_number, &fallback, NULL);
    raise(signal_number);
}

void nbdtop_crash_guard_arm(void) {
    if (!installed) {
        installed = 1;
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_handler = crash_handler;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESETHAND | SA_NODEFER;
        for (unsigned i = 0; i < sizeof guarded_signals / sizeof guarded_signals[0]; i++) {
            sigaction(guarded_signals[i], &action, NULL);
        }
    }
    armed = 1;
}

void nbdtop_crash_guard_disarm(void) { armed = 0; }

int nbdtop_crash_guard_is_armed(void) { return armed ? 1 : 0; }
