/*
 * ncursesw for Swift: the wide-character API, plus inline wrappers for the macros and
 * globals that Swift 6 cannot import (function-like macros, mutable C globals).
 *
 * The package does not ask pkg-config (SwiftPM would drop its -D_XOPEN_SOURCE define
 * with a warning anyway), so the wide API is switched on here, before <ncurses.h>, and
 * the module map links libncursesw (on Debian a linker script that adds libtinfo).
 */
#ifndef NBDTOP_CNCURSES_H
#define NBDTOP_CNCURSES_H

#ifndef _XOPEN_SOURCE_EXTENDED
#define _XOPEN_SOURCE_EXTENDED 1
#endif
#ifndef NCURSES_WIDECHAR
#define NCURSES_WIDECHAR 1
#endif

#include <locale.h>
#include <langinfo.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include <ncurses.h>

/* Globals (Swift 6 refuses unsynchronised mutable globals). */
static inline WINDOW *cncurses_stdscr(void) { return stdscr; }
static inline int cncurses_colors(void) { return COLORS; }
static inline int cncurses_color_pairs(void) { return COLOR_PAIRS; }

/* getmaxyx is a macro. */
static inline int cncurses_columns(WINDOW *window) { int y, x; getmaxyx(window, y, x); (void)y; return x; }
static inline int cncurses_rows(WINDOW *window) { int y, x; getmaxyx(window, y, x); (void)x; return y; }

/* Attributes are macros built from NCURSES_BITS. */
static inline attr_t cncurses_a_normal(void) { return A_NORMAL; }
static inline attr_t cncurses_a_bold(void) { return A_BOLD; }
static inline attr_t cncurses_a_dim(void) { return A_DIM; }
static inline attr_t cncurses_a_underline(void) { return A_UNDERLINE; }
static inline attr_t cncurses_a_reverse(void) { return A_REVERSE; }
static inline attr_t cncurses_a_italic(void) { return A_ITALIC; }

/* Keys: KEY_F(n) is a function-like macro. */
static inline int cncurses_key_f(int n) { return KEY_F(n); }

/* Mouse: presses of the first button and the wheel (buttons 4 and 5), reported at once
 * (no click resolution). KEY_MOUSE is the key code a mouse event arrives as. */
static inline void cncurses_mouse_enable(void) {
    mouseinterval(0);
    mousemask(BUTTON1_PRESSED | BUTTON4_PRESSED
#ifdef BUTTON5_PRESSED
              | BUTTON5_PRESSED
#endif
              , NULL);
}
static inline int cncurses_key_mouse(void) { return KEY_MOUSE; }
/* The pending mouse event: 1 a press of the first button, 2 wheel up, 3 wheel down, 0 none
 * or another; sets row and column. */
static inline int cncurses_mouse_event(int *row, int *column) {
    MEVENT event;
    if (getmouse(&event) != OK) return 0;
    *row = event.y;
    *column = event.x;
    if (event.bstate & BUTTON1_PRESSED) return 1;
    if (event.bstate & BUTTON4_PRESSED) return 2;
#ifdef BUTTON5_PRESSED
    if (event.bstate & BUTTON5_PRESSED) return 3;
#endif
    return 0;
}

/* A screen on stdout/stdin without initscr's exit() on failure; NULL when the terminal
 * cannot be used (TERM unset, unknown or dumb). */
static inline SCREEN *cncurses_newterm(void) { return newterm(NULL, stdout, stdin); }

/* setlocale(LC_ALL, "") and whether the resulting character set is UTF-8. */
static inline void cncurses_setlocale_from_environment(void) { setlocale(LC_ALL, ""); }
static inline int cncurses_locale_is_utf8(void) {
    const char *codeset = nl_langinfo(CODESET);
    return codeset != NULL && (strcmp(codeset, "UTF-8") == 0 || strcmp(codeset, "utf8") == 0);
}

#endif
