package hooks

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/sirupsen/logrus"

	"github.com/vrid/vrid/cgroup"
	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

func setup(t *testing.T) (*config.Config, vresource.Registry, vresource.Chain) {
	t.Helper()
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	reg, err := chain.OpenRegistry(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	ch, err := chain.Register(&cfg, reg, "c1", owner, vresource.Facts{})
	if err != nil {
		t.Fatal(err)
	}
	// Its directory is a tmpfs of its own, unmounted by Forget.
	t.Cleanup(func() { _ = chain.Forget(&cfg, reg, ch) })
	return &cfg, reg, ch
}

func TestReadState(t *testing.T) {
	tests := []struct {
		name, in string
		want     specs.State
		wantErr  bool
	}{
		{"runc", `{"ociVersion":"1.2.1","id":"c1","status":"creating","pid":42,"bundle":"/b","annotations":{"a":"b"}}`,
			specs.State{Version: "1.2.1", ID: "c1", Status: specs.StateCreating, Pid: 42, Bundle: "/b", Annotations: map[string]string{"a": "b"}}, false},
		{"no pid", `{"ociVersion":"1.2.1","id":"c1","status":"stopped","bundle":"/b"}`,
			specs.State{Version: "1.2.1", ID: "c1", Status: specs.StateStopped, Bundle: "/b"}, false},
		{"garbage", `not json`, specs.State{}, true},
		{"empty", ``, specs.State{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadState(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && (got.ID != tt.want.ID || got.Pid != tt.want.Pid || got.Bundle != tt.want.Bundle ||
				got.Status != tt.want.Status || len(got.Annotations) != len(tt.want.Annotations)) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestCreated(t *testing.T) {
	cfg, reg, ch := setup(t)
	spec := &specs.Spec{Process: &specs.Process{User: specs.User{UID: 1000}}, Linux: &specs.Linux{}}
	state := &specs.State{ID: "c1", Pid: os.Getpid(), Bundle: t.TempDir()}
	if err := Created(cfg, reg, ch.AID, state, spec); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no tables: %v, want ErrNotExist", err)
	}
	if err := chain.CreateTables(cfg, ch, 0o666); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second run keeps what the first made
		if err := Created(cfg, reg, ch.AID, state, spec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := reg.Get(ch.AID.String())
	if err != nil || got.RootPid != os.Getpid() {
		t.Errorf("root pid %d, %v", got.RootPid, err)
	}
	ipc, _ := vresource.NamespaceOf("/proc/self/ns/ipc")
	pid, _ := vresource.NamespaceOf("/proc/self/ns/pid")
	cg, err := cgroup.OfProcess(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if f := got.Facts; f.IPCNS != ipc || f.PIDNS != pid || !slices.Equal(f.UIDs, []uint32{1000}) || f.IPCAdmin || f.Cgroup != cg {
		t.Errorf("facts %+v, want ipc %s, pid %s, uids [1000], no IPC admin, cgroup %s", f, ipc, pid, cg)
	}
	if err := Created(cfg, reg, 999, state, spec); !errors.Is(err, vresource.ErrUnknownChain) {
		t.Errorf("unknown AID: %v", err)
	}
}

// A container whose init was killed before its start (runc's failpoint
// in containerd's TestIssue9103) is created with no facts: the task then
// stops, as under runc.v2.
func TestCreatedInitGone(t *testing.T) {
	cfg, reg, ch := setup(t)
	if err := chain.CreateTables(cfg, ch, 0o666); err != nil {
		t.Fatal(err)
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
	state := &specs.State{ID: "c1", Pid: gone.Process.Pid, Bundle: t.TempDir()}
	if err := Created(cfg, reg, ch.AID, state, spec); err != nil {
		t.Fatalf("init gone: %v, want no error", err)
	}
	got, err := reg.Get(ch.AID.String())
	if err != nil || got.RootPid != 0 || !got.Facts.IPCNS.IsZero() || got.Facts.Cgroup != "" {
		t.Errorf("chain %+v (%v): want no root pid and no facts", got, err)
	}
}

// A container whose process runc put in another pid namespace than its
// chain's fails Created, and the chain keeps its facts.
func TestCreatedOtherPIDNamespace(t *testing.T) {
	cfg, reg, ch := setup(t)
	if err := chain.CreateTables(cfg, ch, 0o666); err != nil {
		t.Fatal(err)
	}
	other := vresource.NamespaceID{Dev: 4, Ino: 1}
	err := reg.Update(ch.AID, func(c *vresource.Chain) error {
		c.Facts.PIDNS = other
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	err = Created(cfg, reg, ch.AID, &specs.State{ID: "c2", Pid: os.Getpid(), Bundle: t.TempDir()}, &specs.Spec{Process: &specs.Process{}})
	want := " is not its chain's 4:1: the containers of a chain must share one"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want one saying %q", err, want)
	}
	got, err := reg.Get(ch.AID.String())
	if err != nil || got.Facts.PIDNS != other || got.RootPid != 0 {
		t.Errorf("chain's pid namespace %s, root pid %d, %v; want %s, 0", got.Facts.PIDNS, got.RootPid, err, other)
	}
}

func TestSharePIDNamespace(t *testing.T) {
	a, b := vresource.NamespaceID{Dev: 4, Ino: 1}, vresource.NamespaceID{Dev: 4, Ino: 2}
	tests := []struct {
		name        string
		chain, proc vresource.NamespaceID
		want        vresource.NamespaceID
		wantErr     bool
	}{
		{name: "first learns it", proc: a, want: a},
		{name: "same", chain: a, proc: a, want: a},
		{name: "other", chain: a, proc: b, want: a, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := vresource.Facts{PIDNS: tt.chain}
			err := sharePIDNamespace(&f, tt.proc)
			if (err != nil) != tt.wantErr || f.PIDNS != tt.want {
				t.Errorf("chain's pid namespace %s, err %v; want %s, error %v", f.PIDNS, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestPlantedSymlink replaces the table file, on the host, by a symlink
// to a file outside the state directory: neither hook follows it, each
// says why, the poststop hook still tears the chain down, and the file
// the link aims at is as it was.
func TestPlantedSymlink(t *testing.T) {
	stages := map[string]func(*config.Config, vresource.Registry, vresource.AID, *specs.State) error{
		"created": func(cfg *config.Config, reg vresource.Registry, aid vresource.AID, state *specs.State) error {
			return Created(cfg, reg, aid, state, &specs.Spec{Process: &specs.Process{}})
		},
		"poststop": Poststop,
	}
	for name, stage := range stages {
		t.Run(name, func(t *testing.T) {
			cfg, reg, ch := setup(t)
			if err := chain.CreateTables(cfg, ch, 0o666); err != nil {
				t.Fatal(err)
			}
			victim := filepath.Join(t.TempDir(), "victim")
			if err := os.WriteFile(victim, []byte("host data\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(ch.Tables); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(victim, ch.Tables); err != nil {
				t.Fatal(err)
			}
			// In the host's IPC namespace, teardown reads the tables.
			bundle := t.TempDir()
			if err := oci.SaveSpec(bundle, &specs.Spec{Process: &specs.Process{}}); err != nil {
				t.Fatal(err)
			}
			err := stage(cfg, reg, ch.AID, &specs.State{ID: "c1", Pid: os.Getpid(), Bundle: bundle})
			want := ch.Tables + ": a symlink, which vrid never follows"
			if !errors.Is(err, chain.ErrSymlink) || !strings.Contains(err.Error(), want) {
				t.Errorf("%v, want ErrSymlink saying %q", err, want)
			}
			st, serr := os.Stat(victim)
			data, rerr := os.ReadFile(victim)
			if serr != nil || rerr != nil || st.Mode().Perm() != 0o600 || string(data) != "host data\n" {
				t.Errorf("victim now %v %q (%v, %v)", st.Mode(), data, serr, rerr)
			}
			if name != "poststop" {
				return
			}
			if _, err := reg.Get(ch.AID.String()); !errors.Is(err, vresource.ErrUnknownChain) {
				t.Errorf("chain still registered: %v", err)
			}
			if _, err := os.Lstat(chain.Dir(cfg.StateDir, ch.AID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("chain dir left: %v", err)
			}
		})
	}
}

func TestPoststop(t *testing.T) {
	here, err := vresource.NamespaceOf("/proc/self/ns/ipc")
	if err != nil {
		t.Fatal(err)
	}
	other := vresource.NamespaceID{Dev: here.Dev, Ino: here.Ino + 1}
	joined := []specs.LinuxNamespace{{Type: specs.IPCNamespace, Path: "/proc/self/ns/ipc"}}
	tests := []struct {
		name       string
		namespaces []specs.LinuxNamespace
		ipcNS      vresource.NamespaceID // Facts.IPCNS
		wantLog    string                // "" for no warning
	}{
		{"private ipc", []specs.LinuxNamespace{{Type: specs.IPCNamespace}}, here, ""},
		{"host ipc", nil, here, ""},
		{"ipc gone", []specs.LinuxNamespace{{Type: specs.IPCNamespace, Path: "/proc/0/ns/ipc"}}, here, ""},
		{"joined ipc", joined, here, ""},
		{"joined ipc, not the chain's", joined, other, "is IPC namespace " + here.String() + ", the chain's is " + other.String()},
		{"joined ipc, the chain's unknown", joined, vresource.NamespaceID{}, "the chain's is unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			logrus.SetOutput(&log)
			defer logrus.SetOutput(os.Stderr)
			cfg, reg, ch := setup(t)
			if err := reg.Update(ch.AID, func(c *vresource.Chain) error { c.Facts.IPCNS = tt.ipcNS; return nil }); err != nil {
				t.Fatal(err)
			}
			if err := chain.CreateTables(cfg, ch, 0o666); err != nil {
				t.Fatal(err)
			}
			bundle := t.TempDir()
			spec := &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: tt.namespaces}}
			if err := oci.SaveSpec(bundle, spec); err != nil {
				t.Fatal(err)
			}
			state := &specs.State{ID: "c1", Bundle: bundle}
			for range 2 { // the second finds nothing to do
				if err := Poststop(cfg, reg, ch.AID, state); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := reg.Get(ch.AID.String()); !errors.Is(err, vresource.ErrUnknownChain) {
				t.Errorf("chain still registered: %v", err)
			}
			if _, err := os.Stat(chain.Dir(cfg.StateDir, ch.AID)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("chain dir left: %v", err)
			}
			if got := log.String(); tt.wantLog == "" && got != "" || !strings.Contains(got, tt.wantLog) {
				t.Errorf("log %q, want one saying %q", got, tt.wantLog)
			}
		})
	}
}
