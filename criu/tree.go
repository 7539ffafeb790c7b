package criu

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
)

// Process is one entry of an image's pstree: a process with its ids as
// they were at dump time.  Threads holds every thread id, the main
// thread's (equal to Pid) first.
type Process struct {
	Pid, Ppid, Pgid, Sid int
	Threads              []int
}

// Tree is the process tree of an image, root first, in pstree order.
type Tree struct {
	Procs []Process
}

// Root is the pid of the tree's root process.
func (t *Tree) Root() int {
	return t.Procs[0].Pid
}

// Ids returns every pid and tid of the tree, sorted, each once.  These are
// the ids that need a free system pid at restore: process groups and
// sessions are led by one of them, or by a process outside the tree whose
// id stays.
func (t *Tree) Ids() []int {
	var ids []int
	for _, p := range t.Procs {
		ids = append(ids, p.Pid)
		ids = append(ids, p.Threads...)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// ReadTree reads pstree.img of the image in dir.
func ReadTree(dir string) (*Tree, error) {
	img, err := decodeFile(filepath.Join(dir, "pstree.img"), &pstree.PstreeEntry{})
	if err != nil {
		return nil, fmt.Errorf("read process tree of %s: %w", dir, err)
	}
	t := &Tree{}
	for _, e := range img.Entries {
		pe := e.Message.(*pstree.PstreeEntry)
		p := Process{Pid: int(pe.GetPid()), Ppid: int(pe.GetPpid()), Pgid: int(pe.GetPgid()), Sid: int(pe.GetSid())}
		for _, tid := range pe.GetThreads() {
			p.Threads = append(p.Threads, int(tid))
		}
		t.Procs = append(t.Procs, p)
	}
	if len(t.Procs) == 0 {
		return nil, fmt.Errorf("read process tree of %s: %w: empty pstree.img", dir, ErrBadImage)
	}
	return t, nil
}

// decodeFile decodes one image file whose entries are of entryType.
func decodeFile(path string, entryType protoMessage) (*crit.CriuImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, false).Decode(entryType)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w: %v", filepath.Base(path), ErrBadImage, err)
	}
	return img, nil
}
