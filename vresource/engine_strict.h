/*
 * Included first by the engine's .c files in this package: cgo's own C
 * trips these two warnings, so engine.go can't ask for them, but the
 * engine is held to the Makefile's flags here as in the library.
 */
#pragma GCC diagnostic error "-Wmissing-prototypes"
#pragma GCC diagnostic error "-Wstrict-prototypes"
