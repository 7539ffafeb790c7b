// Package snapshot owns a chain's image directory and the order of the
// steps that write and read it: `vrid snapshot` and `vrid restore` are
// thin verbs over Take and Restore.
//
// The image directory holds manifest.json (the format version, the chain
// it came from, the kernel, CRIU and libvrid that made it, and a checksum of
// every other file), tables.img (a private copy of the chain's tables),
// the System V state of package sysv (sysv.json and one file per segment)
// and criu/, the process images of package criu.  The manifest is written
// last: a directory without one is no image.  docs/restore.md describes
// the format and what is saved and rebuilt.
//
// A snapshot runs: quiesce the SysV attachments, freeze the chain's
// cgroup, copy the tables, save the SysV objects that pass the teardown
// rules (chain.IPCRefusal), dump with CRIU, write the manifest.  A
// restore runs: verify the image, register a new chain, create its
// tables from tables.img, recreate the SysV objects under the chain's
// private keys and rebind them, choose free pids, rewrite a copy of the
// CRIU images onto them and onto the new table file, rebind the pids,
// restore with CRIU and, before the tree resumes, patch glibc's cached
// thread ids.  Each step undoes the ones before it on failure: a failed
// snapshot leaves the chain running as it was, a failed restore leaves
// nothing behind, and neither ever writes into an image.
package snapshot
