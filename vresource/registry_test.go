package vresource

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func newRegistry(t *testing.T) *FileRegistry {
	t.Helper()
	r, err := OpenFileRegistry(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func selfOwner(t testing.TB) Owner {
	t.Helper()
	o, err := OwnerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	o.Kind = "run"
	return o
}

// helpRegister registers count unnamed chains and prints their AIDs.
func helpRegister(state, count string) error {
	n, err := strconv.Atoi(count)
	if err != nil {
		return err
	}
	r, err := OpenFileRegistry(state)
	if err != nil {
		return err
	}
	owner, err := OwnerOf(os.Getpid())
	if err != nil {
		return err
	}
	for range n {
		c, err := r.Register(Registration{Owner: owner})
		if err != nil {
			return err
		}
		fmt.Println(c.AID)
	}
	return nil
}

// TestRegisterConcurrent registers from goroutines and from processes at
// once and wants AIDs 1..N, each once.
func TestRegisterConcurrent(t *testing.T) {
	const goroutines, procs, each = 8, 3, 10
	r := newRegistry(t)
	owner := selfOwner(t)
	var mu sync.Mutex
	var aids []AID
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range each {
				c, err := r.Register(Registration{Owner: owner})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				aids = append(aids, c.AID)
				mu.Unlock()
			}
		})
	}
	for range procs {
		cmd := helperCommand("register", "VRID_STATE="+r.dir, "VRID_COUNT="+strconv.Itoa(each))
		wg.Go(func() {
			out, err := cmd.Output()
			if err != nil {
				t.Errorf("register helper: %v\n%s", err, stderrOf(err))
				return
			}
			for _, line := range strings.Fields(string(out)) {
				aid, err := ParseAID(line)
				if err != nil {
					t.Error(err)
				}
				mu.Lock()
				aids = append(aids, aid)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(aids)
	const n = (goroutines + procs) * each
	for i, aid := range aids {
		if aid != AID(i+1) {
			t.Fatalf("aids %v, want 1..%d each once", aids, n)
		}
	}
	if len(aids) != n {
		t.Fatalf("%d aids, want %d", len(aids), n)
	}
	list, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n || list[0].AID != 1 || list[n-1].AID != n {
		t.Errorf("list has %d chains, AIDs %d..%d; want 1..%d", len(list), list[0].AID, list[len(list)-1].AID, n)
	}
}

func TestRegisterNames(t *testing.T) {
	r := newRegistry(t)
	owner := selfOwner(t)
	if _, err := r.Register(Registration{Name: "web", Owner: owner}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		wantName string // of the chain made, or
		wantErr  string // the whole error
	}{
		{"", "aid-2", ""},
		{"db", "db", ""},
		{"db.replica_2-x", "db.replica_2-x", ""},
		{"web", "", `register: chain name "web" is already running as AID 1; pick another --name or stop it`},
		{"12", "", `register: chain name "12" reads as an AID`},
		{"aid-9", "", `register: chain name "aid-9" is kept for the chain of that AID`},
		{"-x", "", `register: chain name "-x": use letters, digits and . _ - (not first)`},
		{"a/b", "", `register: chain name "a/b": use letters, digits and . _ - (not first)`},
		{strings.Repeat("n", 64), "", `register: chain name "` + strings.Repeat("n", 64) + `" is 64 bytes; the limit is 63`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := r.Register(Registration{Name: tt.name, Owner: owner})
			switch {
			case tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr):
				t.Errorf("error %v\nwant %s", err, tt.wantErr)
			case tt.wantErr == "" && (err != nil || c.Name != tt.wantName):
				t.Errorf("chain %q, %v; want %q", c.Name, err, tt.wantName)
			}
		})
	}
	_, err := r.Register(Registration{Name: "web", Owner: owner})
	var inUse *NameInUseError
	if !errors.Is(err, ErrNameInUse) || !errors.As(err, &inUse) || inUse.AID != 1 {
		t.Errorf("name in use: %v", err)
	}
	if _, err := r.Register(Registration{Name: "x"}); err == nil {
		t.Error("registered without an owner")
	}
}

func TestAIDsNeverReused(t *testing.T) {
	r := newRegistry(t)
	owner := selfOwner(t)
	register := func() AID {
		t.Helper()
		c, err := r.Register(Registration{Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return c.AID
	}
	release := func(aid AID) {
		t.Helper()
		if err := r.Release(aid); err != nil {
			t.Fatal(err)
		}
	}
	register()
	release(register())
	if aid := register(); aid != 3 {
		t.Errorf("after releasing aid 2: aid %d, want 3", aid)
	}
	release(1)
	release(3)
	again, err := OpenFileRegistry(r.dir)
	if err != nil {
		t.Fatal(err)
	}
	r = again
	if aid := register(); aid != 4 {
		t.Errorf("after releasing everything and reopening: aid %d, want 4", aid)
	}
	if err := r.Release(3); !errors.Is(err, ErrUnknownChain) {
		t.Errorf("release again: %v, want ErrUnknownChain", err)
	}
	var file struct {
		NextAID AID     `json:"next_aid"`
		Chains  []Chain `json:"chains"`
	}
	data, err := os.ReadFile(filepath.Join(r.dir, "registry.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &file); err != nil || file.NextAID != 5 || len(file.Chains) != 1 || file.Chains[0].AID != 4 {
		t.Errorf("registry.json: next_aid %d, chains %v, %v; want 5 and [aid 4]", file.NextAID, file.Chains, err)
	}
}

func TestStaleOwner(t *testing.T) {
	r := newRegistry(t)
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Skipf("start sleep: %v", err)
	}
	defer child.Process.Kill()
	owner, err := OwnerOf(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	old, err := r.Register(Registration{Name: "db", Owner: owner, TablePath: tablePathIn("/run/vrid")})
	if err != nil {
		t.Fatal(err)
	}
	if old.Tables != "/run/vrid/1.tables" {
		t.Errorf("tables %q, want /run/vrid/1.tables", old.Tables)
	}
	stale := func(nameOrAID string) bool {
		t.Helper()
		c, err := r.Get(nameOrAID)
		if err != nil {
			t.Fatal(err)
		}
		return c.Stale
	}
	if stale("db") {
		t.Error("stale while its owner runs")
	}
	if _, err := r.Register(Registration{Name: "db", Owner: selfOwner(t)}); !errors.Is(err, ErrNameInUse) {
		t.Errorf("took the name of a live chain: %v", err)
	}
	child.Process.Kill()
	child.Wait()
	if !stale("db") || !stale("1") {
		t.Error("not stale once its owner is gone")
	}
	c, err := r.Register(Registration{Name: "db", Owner: selfOwner(t)})
	if err != nil {
		t.Fatal(err)
	}
	if c.AID != 2 || c.Replaced == nil || c.Replaced.AID != 1 || c.Replaced.Tables != "/run/vrid/1.tables" {
		t.Errorf("new chain %d replaced %+v, want 2 replacing aid 1", c.AID, c.Replaced)
	}
	list, err := r.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].AID != 2 || list[0].Stale {
		t.Errorf("list %+v, want only aid 2, live", list)
	}
}

func tablePathIn(dir string) func(AID) string {
	return func(aid AID) string { return filepath.Join(dir, aid.String()+".tables") }
}

func TestOwnerStartTimeTellsReusedPid(t *testing.T) {
	owner := selfOwner(t)
	tests := []struct {
		name  string
		owner Owner
		alive bool
	}{
		{"this process", owner, true},
		{"same pid, other start", Owner{Pid: owner.Pid, StartTime: owner.StartTime + 1}, false},
		{"no such pid", Owner{Pid: deadPid, StartTime: owner.StartTime}, false},
		{"exited, not reaped", zombieOwner(t), false},
	}
	for _, tt := range tests {
		if got := tt.owner.alive(); got != tt.alive {
			t.Errorf("%s: alive %v, want %v", tt.name, got, tt.alive)
		}
	}
}

// zombieOwner describes a child that has exited and is left unreaped
// until the test ends.
func zombieOwner(t *testing.T) Owner {
	t.Helper()
	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Wait() })
	owner, err := OwnerOf(child.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(owner.Pid) + "/stat")
		if err != nil {
			t.Fatal(err)
		}
		if statZombie(stat) {
			return owner
		}
		if time.Now().After(deadline) {
			t.Fatalf("true (pid %d) never exited: %s", owner.Pid, stat)
		}
	}
}

func TestGetUpdateRelease(t *testing.T) {
	r := newRegistry(t)
	owner := selfOwner(t)
	for _, name := range []string{"web", "db"} {
		if _, err := r.Register(Registration{Name: name, Owner: owner}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Update(1, func(c *Chain) error { c.RootPid = 4242; c.Tables = "/t/1"; return nil }); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"change the aid", r.Update(1, func(c *Chain) error { c.AID = 9; return nil }), nil},
		{"take a live name", r.Update(1, func(c *Chain) error { c.Name = "db"; return nil }), ErrNameInUse},
		{"fn fails", r.Update(1, func(c *Chain) error { return fs.ErrPermission }), fs.ErrPermission},
		{"unknown aid", r.Update(9, func(c *Chain) error { return nil }), ErrUnknownChain},
		{"release unknown", r.Release(9), ErrUnknownChain},
	}
	for _, tt := range tests {
		if tt.err == nil || tt.want != nil && !errors.Is(tt.err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, tt.err, tt.want)
		}
	}
	for _, key := range []string{"1", "web"} {
		c, err := r.Get(key)
		if err != nil || c.AID != 1 || c.Name != "web" || c.RootPid != 4242 || c.Tables != "/t/1" || c.Owner != owner {
			t.Errorf("get %s: %+v, %v", key, c, err)
		}
	}
	for _, key := range []string{"3", "nope", "0"} {
		if _, err := r.Get(key); !errors.Is(err, ErrUnknownChain) {
			t.Errorf("get %s: %v, want ErrUnknownChain", key, err)
		}
	}
	if err := r.Update(2, func(c *Chain) error { c.Name = "cache"; return nil }); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Get("cache"); err != nil || c.AID != 2 {
		t.Errorf("get renamed chain: %+v, %v", c, err)
	}
}

func TestStatStartTime(t *testing.T) {
	tests := []struct {
		name string
		stat string
		want uint64
		ok   bool
	}{
		{"plain", "42 (sleep) S 1 42 42 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 123456 5586944 200", 123456, true},
		{"name with spaces and parens", "42 (a) b (c)) S 1 42 42 0 -1 4194560 95 0 0 0 0 0 0 0 20 0 1 0 99 5586944 200", 99, true},
		{"too short", "42 (x) S 1 2 3", 0, false},
		{"no name", "42 x S", 0, false},
	}
	for _, tt := range tests {
		got, err := statStartTime([]byte(tt.stat))
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("%s: %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
	if _, err := OwnerOf(deadPid); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("owner of a missing pid: %v", err)
	}
}

// The cgroup given at registration is on record from the first write,
// named after the AID it comes with, beside the other facts.
func TestRegisterCgroupPath(t *testing.T) {
	r := newRegistry(t)
	cgroupPath := func(aid AID) string { return "/sys/fs/cgroup/vrid/x-" + aid.String() }
	facts := Facts{IPCNS: NamespaceID{Dev: 4, Ino: 4026531839}, UIDs: []uint32{0}}
	for _, want := range []AID{1, 2} {
		c, err := r.Register(Registration{Owner: selfOwner(t), Facts: facts, CgroupPath: cgroupPath})
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Get(c.AID.String())
		if err != nil {
			t.Fatal(err)
		}
		wantFacts := facts
		wantFacts.Cgroup = cgroupPath(want)
		if c.AID != want || !reflect.DeepEqual(got.Facts, wantFacts) {
			t.Errorf("chain %d facts %+v, want chain %d with %+v", c.AID, got.Facts, want, wantFacts)
		}
	}
}

// TestAIDsAfterReboot: a registry written in another boot may have lost
// the last growth of next_aid in a crash, so AIDs go on from its
// reserved_aid; in this boot, from next_aid.  The first write of a boot
// reserves a block past next_aid, the next one once next_aid passes it.
func TestAIDsAfterReboot(t *testing.T) {
	tests := []struct {
		name          string
		boot          string
		wantAIDs      []AID
		wantReserved  AID
		wantNextAfter AID
	}{
		{"this boot", bootID(), []AID{5, 6}, 300, 7},
		{"another boot", "another-boot", []AID{300, 301}, 301 + aidBlock, 302},
		{"no boot recorded", "", []AID{5, 6}, 6 + aidBlock, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegistry(t)
			reserved := AID(300)
			if tt.boot == "" {
				reserved = 0
			}
			data, err := json.Marshal(registryFile{NextAID: 5, ReservedAID: reserved, Boot: tt.boot, Chains: []Chain{}})
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(r.jsonPath(), data, 0o600); err != nil {
				t.Fatal(err)
			}
			var got []AID
			for range tt.wantAIDs {
				c, err := r.Register(Registration{Owner: selfOwner(t)})
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, c.AID)
			}
			if !slices.Equal(got, tt.wantAIDs) {
				t.Errorf("AIDs %v, want %v", got, tt.wantAIDs)
			}
			f, err := r.load()
			if err != nil {
				t.Fatal(err)
			}
			if f.NextAID != tt.wantNextAfter || f.ReservedAID != tt.wantReserved || f.Boot != bootID() {
				t.Errorf("next_aid %d, reserved_aid %d, boot %q; want %d, %d, %q",
					f.NextAID, f.ReservedAID, f.Boot, tt.wantNextAfter, tt.wantReserved, bootID())
			}
		})
	}
}
