// Package vresource owns what the virtual resources of an application
// chain are made of on the Go side: application chain ids (AIDs), the
// registry that hands them out, the layout of the translation-table file
// shared with the preload layer, and translation through those tables.
//
// The table file is the one binary contract between Go and the C layer in
// preload/.  Go creates it, with its layout mirrored from
// preload/vrid_abi.h; everything else, from checking a file to lookups,
// binds, rebinds and repairs, is the layer's own table engine
// (preload/table.h), which this package compiles in through cgo
// (engine.go): Go and the chain's processes run one engine on one file.
package vresource
