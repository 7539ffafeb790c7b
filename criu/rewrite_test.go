package criu

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	file_lock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/siginfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// shifted maps every id of the tree to id+shift: pids no live process
// has, which is all a rewrite needs.
func shifted(t *Tree, shift int) map[int]int {
	m := map[int]int{}
	for _, id := range t.Ids() {
		m[id] = id + shift
	}
	return m
}

// TestRewriteFields rewrites a real dump of the tree program and reads
// every pid back from the rewritten images.
func TestRewriteFields(t *testing.T) {
	d := treeDump(t, sessionLeader)
	tree, err := ReadTree(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	const shift = 100000
	pids := shifted(tree, shift)
	dst := filepath.Join(t.TempDir(), "rewritten")
	if err := RewritePids(d.dir, dst, pids); err != nil {
		t.Fatal(err)
	}
	p, a, b, thread := d.p+shift, d.a+shift, d.b+shift, d.thread+shift

	core := func(pid int) *criu_core.CoreEntry {
		img := decodeT(t, filepath.Join(dst, fmt.Sprintf("core-%d.img", pid)), &criu_core.CoreEntry{})
		return img.Entries[0].Message.(*criu_core.CoreEntry)
	}
	files := decodeT(t, filepath.Join(dst, "files.img"), &fdinfo.FileEntry{})

	tests := []struct {
		name string
		got  func() any
		want any
	}{
		{"pstree", func() any {
			var got []string
			for _, e := range decodeT(t, filepath.Join(dst, "pstree.img"), &pstree.PstreeEntry{}).Entries {
				pe := e.Message.(*pstree.PstreeEntry)
				got = append(got, fmt.Sprint(pe.GetPid(), pe.GetPpid(), pe.GetPgid(), pe.GetSid(), pe.GetThreads()))
			}
			return got
		}, []string{
			fmt.Sprint(p, 0, p, p, []int{p, thread}), // CRIU keeps no parent of the root
			fmt.Sprint(a, p, p, p, []int{a}),
			fmt.Sprint(b, p, p, p, []int{b}),
		}},
		{"file names", func() any { return dirNames(t, dst) }, func() []string {
			var want []string
			for _, n := range dirNames(t, d.dir) {
				for _, old := range tree.Ids() {
					for _, prefix := range []string{"core", "mm", "pagemap", "fs", "ids"} {
						if n == fmt.Sprintf("%s-%d.img", prefix, old) {
							n = fmt.Sprintf("%s-%d.img", prefix, old+shift)
						}
					}
				}
				want = append(want, n)
			}
			slices.Sort(want)
			return want
		}()},
		{"posix timer notify_thread_id", func() any {
			var got []int32
			for _, pt := range core(p).GetTc().GetTimers().GetPosix() {
				got = append(got, pt.GetNotifyThreadId())
			}
			return got
		}, []int32{int32(thread)}},
		{"queued signal of A (sigqueue)", func() any {
			return siginfos(core(a).GetTc().GetSignalsS().GetSignals())
		}, []string{fmt.Sprintf("signo=10 code=-1 pid=%d", p)}},
		{"thread signal of B (tgkill)", func() any {
			return siginfos(core(b).GetThreadCore().GetSignalsP().GetSignals())
		}, []string{fmt.Sprintf("signo=10 code=-6 pid=%d", p)}},
		{"no queued signal in P", func() any {
			return len(core(p).GetTc().GetSignalsS().GetSignals())
		}, 0},
		{"file lock", func() any {
			var got []int32
			for _, e := range decodeT(t, filepath.Join(dst, "filelocks.img"), &file_lock.FileLockEntry{}).Entries {
				got = append(got, e.Message.(*file_lock.FileLockEntry).GetPid())
			}
			return got
		}, []int32{int32(p)}},
		{"fown of P's socket (F_SETOWN)", func() any {
			var got []uint32
			for _, e := range files.Entries {
				if own := e.Message.(*fdinfo.FileEntry).GetUsk().GetFown().GetPid(); own != 0 {
					got = append(got, own)
				}
			}
			return got
		}, []uint32{uint32(p)}},
		{"pidfd nspid", func() any {
			var got []int32
			for _, e := range files.Entries {
				if nspid, ok := pidfdNspidOf(t, e.Message); ok {
					got = append(got, nspid)
				}
			}
			return got
		}, []int32{int32(a)}},
		{"tty sessions and process groups", func() any {
			var got []string
			for _, e := range decodeT(t, filepath.Join(dst, "tty-info.img"), &tty.TtyInfoEntry{}).Entries {
				ti := e.Message.(*tty.TtyInfoEntry)
				got = append(got, fmt.Sprintf("sid=%d pgrp=%d", ti.GetSid(), ti.GetPgrp()))
			}
			return got
		}, []string{fmt.Sprintf("sid=%d pgrp=%d", p, p), fmt.Sprintf("sid=%d pgrp=%d", p, p)}}, // master and slave
		{"page images are hard links", func() any {
			var got []bool
			pages, _ := filepath.Glob(filepath.Join(d.dir, "pages-*.img"))
			for _, src := range pages {
				got = append(got, sameInode(t, src, filepath.Join(dst, filepath.Base(src))))
			}
			return got
		}, []bool{true, true, true}},
		{"images without pids are byte-identical", func() any {
			var differ []string
			for _, n := range []string{"inventory.img", "mm-%d.img", "pagemap-%d.img", "fs-%d.img", "ids-%d.img", "pipes-data.img", "sk-queues.img", "fdinfo-2.img"} {
				src, out := n, n
				if strings.Contains(n, "%d") {
					src, out = fmt.Sprintf(n, d.p), fmt.Sprintf(n, p)
				}
				if readFileT(t, filepath.Join(d.dir, src)) != readFileT(t, filepath.Join(dst, out)) {
					differ = append(differ, n)
				}
			}
			return differ
		}, []string(nil)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.got(); fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestRewriteOutsideSession rewrites the dump of a shell job, whose
// session is led from outside the tree: the session id stays.
func TestRewriteOutsideSession(t *testing.T) {
	d := treeDump(t, shellJob)
	tree, err := ReadTree(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "rewritten")
	if err := RewritePids(d.dir, dst, shifted(tree, 100000)); err != nil {
		t.Fatal(err)
	}
	got, err := ReadTree(dst)
	if err != nil {
		t.Fatal(err)
	}
	sid := d.before.int(t, "P ready", "sid")
	p, a, b, thread := d.p+100000, d.a+100000, d.b+100000, d.thread+100000
	want := &Tree{Procs: []Process{
		{Pid: p, Ppid: 0, Pgid: p, Sid: sid, Threads: []int{p, thread}},
		{Pid: a, Ppid: p, Pgid: p, Sid: sid, Threads: []int{a}},
		{Pid: b, Ppid: p, Pgid: p, Sid: sid, Threads: []int{b}},
	}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("pstree %v, want %v", got, want)
	}
}

// TestRewriteIdentity rewrites with every id onto itself: every image
// must decode to what it was.
func TestRewriteIdentity(t *testing.T) {
	d := treeDump(t, sessionLeader)
	tree, err := ReadTree(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "same")
	if err := RewritePids(d.dir, dst, shifted(tree, 0)); err != nil {
		t.Fatal(err)
	}
	for _, n := range dirNames(t, d.dir) {
		t.Run(n, func(t *testing.T) {
			if !strings.HasSuffix(n, ".img") || strings.HasPrefix(n, "pages-") {
				if readFileT(t, filepath.Join(d.dir, n)) != readFileT(t, filepath.Join(dst, n)) {
					t.Error("copy differs")
				}
				return
			}
			kind, err := imageKind(filepath.Join(d.dir, n))
			if err != nil {
				t.Fatal(err)
			}
			entryType, ok := pidImages[kind]
			if !ok {
				if readFileT(t, filepath.Join(d.dir, n)) != readFileT(t, filepath.Join(dst, n)) {
					t.Error("copy differs")
				}
				return
			}
			src, out := decodeT(t, filepath.Join(d.dir, n), entryType), decodeT(t, filepath.Join(dst, n), entryType)
			if len(src.Entries) != len(out.Entries) {
				t.Fatalf("%d entries, want %d", len(out.Entries), len(src.Entries))
			}
			for i := range src.Entries {
				if !proto.Equal(src.Entries[i].Message, out.Entries[i].Message) {
					t.Errorf("entry %d: %v\nwant %v", i, out.Entries[i].Message, src.Entries[i].Message)
				}
			}
		})
	}
}

// TestRewriteRefuses checks that a rewrite which cannot be done fails with
// the error that says why, leaves its source as it was, and leaves no
// destination or temporary directory.
func TestRewriteRefuses(t *testing.T) {
	d := treeDump(t, sessionLeader)
	tree, err := ReadTree(d.dir)
	if err != nil {
		t.Fatal(err)
	}
	good := shifted(tree, 100000)
	tests := []struct {
		name   string
		pids   func() map[int]int
		change func(t *testing.T, dir string) // breaks a copy of the image
		dstDir bool                           // dst exists already
		want   error
	}{
		{name: "an id without a new pid", pids: func() map[int]int {
			m := shifted(tree, 100000)
			delete(m, d.thread)
			return m
		}, want: ErrPidMap},
		{name: "two ids onto one pid", pids: func() map[int]int {
			m := shifted(tree, 100000)
			m[d.a] = m[d.b]
			return m
		}, want: ErrPidMap},
		{name: "destination exists", dstDir: true, want: os.ErrExist},
		{name: "truncated core image", change: func(t *testing.T, dir string) {
			if err := os.Truncate(filepath.Join(dir, fmt.Sprintf("core-%d.img", d.a)), 13); err != nil {
				t.Fatal(err)
			}
		}, want: ErrBadImage},
		{name: "image named by a pid outside the tree", change: func(t *testing.T, dir string) {
			copyT(t, filepath.Join(dir, fmt.Sprintf("mm-%d.img", d.a)), filepath.Join(dir, "mm-7.img"))
		}, want: ErrBadImage},
		{name: "legacy signal image", change: func(t *testing.T, dir string) {
			writeMagic(t, filepath.Join(dir, fmt.Sprintf("signal-p-%d.img", d.thread)), 0x59255647)
		}, want: ErrUnsupportedImage},
		{name: "image kind unknown to go-criu (pidfd)", change: func(t *testing.T, dir string) {
			writeMagic(t, filepath.Join(dir, "pidfd.img"), 0x54435556)
		}, want: ErrUnsupportedImage},
		{name: "field unknown to go-criu", change: func(t *testing.T, dir string) {
			path := filepath.Join(dir, "pstree.img")
			img := decodeT(t, path, &pstree.PstreeEntry{})
			m := img.Entries[1].Message.ProtoReflect()
			m.SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 9, protowire.VarintType), uint64(d.a)))
			encodeT(t, path, img)
		}, want: ErrUnsupportedImage},
		{name: "parent link of a pre-dump", change: func(t *testing.T, dir string) {
			if err := os.Symlink("../pre", filepath.Join(dir, "parent")); err != nil {
				t.Fatal(err)
			}
		}, want: ErrUnsupportedImage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			src := d.dir
			if tc.change != nil {
				src = filepath.Join(parent, "src")
				copyDirT(t, d.dir, src)
				tc.change(t, src)
			}
			before := hashDir(t, src)
			pids := good
			if tc.pids != nil {
				pids = tc.pids()
			}
			dst := filepath.Join(parent, "dst")
			if tc.dstDir {
				if err := os.Mkdir(dst, 0o700); err != nil {
					t.Fatal(err)
				}
			}
			err := RewritePids(src, dst, pids)
			if !errors.Is(err, tc.want) {
				t.Fatalf("RewritePids: %v, want %v", err, tc.want)
			}
			if after := hashDir(t, src); after != before {
				t.Errorf("the source changed")
			}
			want := []string{"dst"}
			if tc.change != nil {
				want = []string{"dst", "src"}
			}
			if !tc.dstDir {
				want = want[1:]
			}
			if got := dirNames(t, parent); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("left in the destination's directory: %v, want %v", got, want)
			}
		})
	}
}

func TestSiginfoHasPid(t *testing.T) {
	tests := []struct {
		name        string
		signo, code int32
		want        bool
	}{
		{"kill", 10, 0, true},
		{"sigqueue", 10, -1, true},
		{"tgkill", 10, -6, true},
		{"mq_notify", 10, -3, true},
		{"posix timer", 34, -2, false},
		{"SIGIO", 29, -5, false},
		{"SIGCHLD exited", 17, 1, true},
		{"SIGSEGV fault", 11, 1, false},
		{"SIGBUS fault", 7, 2, false},
		{"SIGPOLL band", 29, 1, false},
		{"kernel-sent", 9, 0x80, true},
		{"unknown code of a plain signal", 10, 3, false},
		{"code past NSIGPOLL", 10, 7, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := siginfoHasPid(tc.signo, tc.code); got != tc.want {
				t.Errorf("siginfoHasPid(%d, %d) = %v, want %v", tc.signo, tc.code, got, tc.want)
			}
		})
	}
}

func TestPickFree(t *testing.T) {
	busySet := func(pids ...int) func(int) bool {
		return func(p int) bool { return slices.Contains(pids, p) }
	}
	tests := []struct {
		name      string
		ids       []int
		last, max int
		busy      func(int) bool
		want      map[int]int
		wantErr   error
	}{
		{"below the cursor, in order", []int{10, 11, 12}, 1000, 32768, busySet(),
			map[int]int{10: 998, 11: 999, 12: 1000}, nil},
		{"skips busy pids", []int{10, 11, 12}, 1000, 32768, busySet(1000, 998),
			map[int]int{10: 996, 11: 997, 12: 999}, nil},
		{"wraps to the top below RESERVED_PIDS", []int{10, 11, 12}, 301, 400, busySet(),
			map[int]int{10: 300, 11: 301, 12: 399}, nil},
		{"too few free pids", []int{10, 11, 12}, 301, 303, busySet(302), nil, ErrNoFreePids},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pickFree(tc.ids, tc.last, tc.max, tc.busy)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// TestChooseFreePids checks the chosen pids against the live system: no
// task and no process group or session has one.
func TestChooseFreePids(t *testing.T) {
	tree := &Tree{Procs: []Process{{Pid: 5, Ppid: 1, Pgid: 5, Sid: 5, Threads: []int{5, 6}}, {Pid: 7, Ppid: 5, Pgid: 5, Sid: 5, Threads: []int{7}}}}
	pids, err := ChooseFreePids(tree)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := groupIds("/proc")
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 3 {
		t.Fatalf("%v: want a pid for each of 5, 6, 7", pids)
	}
	for old, p := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", p)); err == nil || groups[p] {
			t.Errorf("%d -> %d, which is in use", old, p)
		}
	}
	if !(pids[5] < pids[6] && pids[6] < pids[7]) {
		t.Errorf("%v: order not kept", pids)
	}
}

func decodeT(t *testing.T, path string, entryType protoMessage) *crit.CriuImage {
	t.Helper()
	img, err := decodeFile(path, entryType)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func encodeT(t *testing.T, path string, img *crit.CriuImage) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := crit.New(nil, f, "", false, false).Encode(img); err != nil {
		t.Fatal(err)
	}
}

// siginfos renders queued siginfos as signo, code and pid.
func siginfos(list []*siginfo.SiginfoEntry) []string {
	var out []string
	for _, s := range list {
		b := s.GetSiginfo()
		out = append(out, fmt.Sprintf("signo=%d code=%d pid=%d", int32(binary.LittleEndian.Uint32(b)),
			int32(binary.LittleEndian.Uint32(b[8:])), int32(binary.LittleEndian.Uint32(b[16:]))))
	}
	return out
}

// pidfdNspidOf reads the nspid of a file entry's pidfd, a field go-criu's
// protos lack.
func pidfdNspidOf(t *testing.T, m proto.Message) (int32, bool) {
	raw := m.ProtoReflect().GetUnknown()
	for len(raw) > 0 {
		num, _, n := protowire.ConsumeField(raw)
		if n < 0 {
			t.Fatal("bad unknown field")
		}
		if num == pidfdField {
			val, _ := protowire.ConsumeBytes(raw[protowire.SizeTag(num):n])
			for len(val) > 0 {
				fnum, _, fn := protowire.ConsumeField(val)
				if fnum == pidfdNspid {
					v, _ := protowire.ConsumeVarint(val[protowire.SizeTag(fnum):fn])
					return int32(v), true
				}
				val = val[fn:]
			}
		}
		raw = raw[n:]
	}
	return 0, false
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func readFileT(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameInode(t *testing.T, a, b string) bool {
	t.Helper()
	sa, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return sa.Sys().(*syscall.Stat_t).Ino == sb.Sys().(*syscall.Stat_t).Ino
}

func copyT(t *testing.T, src, dst string) {
	t.Helper()
	if err := copyFile(src, dst); err != nil {
		t.Fatal(err)
	}
}

func copyDirT(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, n := range dirNames(t, src) {
		copyT(t, filepath.Join(src, n), filepath.Join(dst, n))
	}
}

// writeMagic writes an image file with the common magic and kind's magic
// and no entries.
func writeMagic(t *testing.T, path string, kind uint32) {
	t.Helper()
	b := binary.LittleEndian.AppendUint32(nil, 0x54564319) // IMG_COMMON
	b = binary.LittleEndian.AppendUint32(b, kind)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}
