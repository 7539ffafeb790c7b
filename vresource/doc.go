// Package vresource owns what the virtual resources of an application
// chain are made of on the Go side: application chain ids (AIDs), the
// registry that hands them out, the layout of the translation-table file
// shared with the preload layer, and translation through those tables.
//
// The table file is the one binary contract between Go and the C layer in
// preload/; its layout is mirrored from preload/vrid_abi.h and its
// algorithm from preload/table.c, bit for bit, so that Go and C processes
// can read and write one file at the same time.
package vresource
