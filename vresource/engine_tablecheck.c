/* The engine's tablecheck.c, built into package vresource (engine.go). */
#include "engine_strict.h"
#include "tablecheck.c"
