// Package criu owns dumping and restoring process trees with CRIU through
// go-criu v7 (CRIU's RPC in swrk mode), and rewriting CRIU images so that a
// tree restores onto other pids.
//
// A restore onto new pids runs in four steps:
//
//	tree, _ := criu.ReadTree(img)          // the pids the image holds
//	unlock, _ := criu.LockPids()           // against other restores of this package
//	pids, _ := criu.ChooseFreePids(tree)   // old pid or tid -> free system pid
//	criu.RewritePids(img, work, pids)      // a rewritten copy; img is never changed
//	root, _ := criu.Restore(ctx, work, criu.RestoreOpts{...})
//	unlock()
//
// RewritePids decodes with go-criu's crit every image kind that holds a pid
// and re-encodes it; the others are copied, and the page images are hard
// links.  Image kinds it cannot rewrite make it fail with
// ErrUnsupportedImage rather than restore a tree with stale pids.
package criu
