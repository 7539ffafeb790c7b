package shim

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/vrid/vrid/chain"
	"github.com/vrid/vrid/config"
	"github.com/vrid/vrid/oci"
	"github.com/vrid/vrid/vresource"
)

func mustAny(t *testing.T, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestParseOptions(t *testing.T) {
	bundle := t.TempDir()
	runc := mustAny(t, &runcoptions.Options{BinaryName: "/opt/runc", Root: "/run/r"})
	tests := []struct {
		name       string
		opts       *anypb.Any
		wantConfig string
		wantRunc   *anypb.Any
		wantErr    error
	}{
		{name: "none", opts: nil},
		{name: "empty any", opts: &anypb.Any{}},
		{name: "runc options pass through", opts: runc, wantRunc: runc},
		{name: "config path", opts: mustAny(t, &runtimeoptions.Options{ConfigPath: "/etc/vrid/x.toml"}), wantConfig: "/etc/vrid/x.toml"},
		{name: "config body", opts: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("log_level = \"debug\"\n")}),
			wantConfig: filepath.Join(bundle, ConfigBodyFile)},
		{name: "empty runtimeoptions", opts: mustAny(t, &runtimeoptions.Options{})},
		{name: "other type", opts: mustAny(t, &emptypb.Empty{}), wantErr: errUnknownOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.opts, bundle)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got.ConfigPath != tt.wantConfig || got.Runc != tt.wantRunc {
				t.Errorf("got %+v, want config %q runc %v", got, tt.wantConfig, tt.wantRunc)
			}
		})
	}
	body, err := os.ReadFile(filepath.Join(bundle, ConfigBodyFile))
	if err != nil || string(body) != "log_level = \"debug\"\n" {
		t.Errorf("config body file: %q, %v", body, err)
	}
}

func testConfig(t *testing.T) (*config.Config, vresource.Registry) {
	t.Helper()
	cfg := config.Default()
	cfg.StateDir = t.TempDir()
	reg, err := chain.OpenRegistry(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Chains the shim registers have a tmpfs of their own: forget what a
	// test left, before its directory is removed.
	t.Cleanup(func() {
		chains, _ := reg.List()
		for _, ch := range chains {
			_ = chain.Forget(&cfg, reg, ch)
		}
	})
	return &cfg, reg
}

func TestChainFor(t *testing.T) {
	cfg, reg := testConfig(t)
	self := selfPIDNamespace(t)
	// Live chains to join, owned by this test process: web lets others
	// join, db does not.
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	web, err := register(cfg, reg, "web", owner, member{joinable: true, pidNS: self})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := register(cfg, reg, "private", owner, member{pidNS: self}); err != nil {
		t.Fatal(err)
	}
	// A chain that took pod sbB's name outside the pod.
	if _, err := register(cfg, reg, oci.PodChainName("sbB"), owner, member{pidNS: self}); err != nil {
		t.Fatal(err)
	}
	otherPath, other := otherPIDNamespace(t)
	newPIDNS := []specs.LinuxNamespace{{Type: specs.PIDNamespace}}
	podA := map[string]string{annotationCRISandboxID: "sbA"}
	longID := strings.Repeat("0123456789abcdef", 4) // as CRI's, cut to fit
	tests := []struct {
		name        string
		id          string
		annotations map[string]string
		namespaces  []specs.LinuxNamespace
		wantName    string
		wantAID     vresource.AID // 0: a new one
		wantOwned   bool
		wantMade    bool   // registered by this container; wantOwned implies it
		wantPod     string // a pod's chain
		wantFacts   vresource.Facts
		wantErr     error // errAny: any error
	}{
		{name: "container id", id: "c1", wantName: "c1", wantOwned: true, wantFacts: vresource.Facts{PIDNS: self}},
		{name: "numeric container id", id: "42", wantName: "ctr-42", wantOwned: true, wantFacts: vresource.Facts{PIDNS: self}},
		{name: "new name", id: "c2", annotations: map[string]string{oci.AnnotationAID: "db"}, wantName: "db", wantOwned: true,
			wantFacts: vresource.Facts{PIDNS: self}},
		{name: "owner facts", id: "c7", namespaces: newPIDNS,
			annotations: map[string]string{oci.AnnotationJoinable: "true", annotationCRISandboxID: "sb1"},
			wantName:    "c7", wantOwned: true, wantFacts: vresource.Facts{Joinable: true, Sandbox: "sb1"}},
		{name: "live name joins", id: "c3", annotations: map[string]string{oci.AnnotationAID: "web"}, wantName: "web", wantAID: web.AID,
			wantFacts: web.Facts},
		{name: "aid joins", id: "c4", annotations: map[string]string{oci.AnnotationAID: web.AID.String()}, wantName: "web", wantAID: web.AID,
			wantFacts: web.Facts},
		{name: "not joinable by name", id: "c8", annotations: map[string]string{oci.AnnotationAID: "private"}, wantErr: errNotJoinable},
		{name: "not joinable by container id", id: "c9", annotations: map[string]string{oci.AnnotationAID: "c1"}, wantErr: errNotJoinable},
		{name: "new pid namespace", id: "c10", annotations: map[string]string{oci.AnnotationAID: "web"}, namespaces: newPIDNS,
			wantErr: errPIDNamespace},
		{name: "unknown aid", id: "c5", annotations: map[string]string{oci.AnnotationAID: "999"}, wantErr: vresource.ErrUnknownChain},
		{name: "bad name", id: "c6", annotations: map[string]string{oci.AnnotationAID: "-x"}, wantErr: errAny},
		{name: "bad joinable", id: "c11", annotations: map[string]string{oci.AnnotationJoinable: "yes"}, wantErr: errAny},
		// Tests from here on run in this order: the first registers pod
		// sbA's chain, the second joins it.
		{name: "pod's first container", id: "p1", annotations: podA, wantName: "pod-sbA", wantMade: true, wantPod: "sbA",
			wantFacts: vresource.Facts{Sandbox: "sbA", PIDNS: self}},
		{name: "pod's next container", id: "p2", annotations: podA, wantName: "pod-sbA", wantPod: "sbA",
			wantFacts: vresource.Facts{Sandbox: "sbA", PIDNS: self}},
		{name: "pod container, new pid namespace", id: "p3", annotations: podA, namespaces: newPIDNS, wantName: "p3", wantOwned: true,
			wantFacts: vresource.Facts{Sandbox: "sbA"}},
		{name: "pod container, other pid namespace", id: "p4", annotations: podA,
			namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace, Path: otherPath}},
			wantName:   "p4", wantOwned: true, wantFacts: vresource.Facts{Sandbox: "sbA", PIDNS: other}},
		{name: "pod annotation names the chain", id: "p5", annotations: map[string]string{annotationCRISandboxID: "sbC", oci.AnnotationAID: "cchain"},
			wantName: "cchain", wantOwned: true, wantFacts: vresource.Facts{Sandbox: "sbC", PIDNS: self}},
		{name: "pod chain name taken", id: "p6", annotations: map[string]string{annotationCRISandboxID: "sbB"}, wantErr: errNotJoinable},
		{name: "long sandbox id", id: "p7", annotations: map[string]string{annotationCRISandboxID: longID},
			wantName: "pod-" + longID[:59], wantMade: true, wantPod: longID, wantFacts: vresource.Facts{Sandbox: longID, PIDNS: self}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := reg.List()
			if err != nil {
				t.Fatal(err)
			}
			spec := &specs.Spec{Annotations: tt.annotations, Linux: &specs.Linux{Namespaces: tt.namespaces}}
			p, err := chainFor(cfg, reg, tt.id, spec)
			ch, owned := p.ch, p.owned
			if made := tt.wantMade || tt.wantOwned; p.made != made || p.pod != tt.wantPod {
				t.Errorf("made %v, pod %q; want made %v, pod %q", p.made, p.pod, made, tt.wantPod)
			}
			if tt.wantErr != nil {
				if err == nil || tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
					t.Fatalf("chainFor: %v, %+v; want %v", err, ch, tt.wantErr)
				}
				if after, _ := reg.List(); len(after) != len(before) {
					t.Errorf("a refused container left chains: %d before, %d after", len(before), len(after))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.Name != tt.wantName || owned != tt.wantOwned || tt.wantAID != 0 && ch.AID != tt.wantAID {
				t.Errorf("chain %s %q owned %v, want %q owned %v (aid %d)", ch.AID, ch.Name, owned, tt.wantName, tt.wantOwned, tt.wantAID)
			}
			if owned && ch.Owner.Kind != OwnerKind {
				t.Errorf("owner kind %q", ch.Owner.Kind)
			}
			stored, err := reg.Get(ch.AID.String())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(stored.Facts, tt.wantFacts) || !reflect.DeepEqual(ch.Facts, tt.wantFacts) {
				t.Errorf("facts %+v, stored %+v; want %+v", ch.Facts, stored.Facts, tt.wantFacts)
			}
			if _, err := os.Stat(chain.Dir(cfg.StateDir, ch.AID)); err != nil {
				t.Errorf("chain dir: %v", err)
			}
		})
	}
}

// cleanupBundle tears down an owned chain once, and leaves a joined one.
func TestCleanupBundle(t *testing.T) {
	cfg, reg := testConfig(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("state_dir = \""+cfg.StateDir+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, owned := range []bool{true, false} {
		bundle := t.TempDir()
		p, err := chainFor(cfg, reg, filepath.Base(bundle), &specs.Spec{})
		if err != nil {
			t.Fatal(err)
		}
		ch := p.ch
		if err := chain.CreateTables(cfg, ch, 0o666); err != nil {
			t.Fatal(err)
		}
		if err := writeBundleState(bundle, bundleState{AID: ch.AID, Owned: owned, Config: path}); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if err := cleanupBundle(bundle); err != nil {
				t.Fatal(err)
			}
		}
		_, err = reg.Get(ch.AID.String())
		if gone := errors.Is(err, vresource.ErrUnknownChain); gone != owned {
			t.Errorf("owned %v: chain gone %v (%v)", owned, gone, err)
		}
		if _, err := os.Stat(filepath.Join(bundle, StateFile)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("owned %v: %s left: %v", owned, StateFile, err)
		}
	}
}

// The pod's chain outlives its containers' bundles and goes with its
// sandbox's; a sandbox leaves alone a chain of its pod's name that is
// not its pod's.
func TestCleanupPod(t *testing.T) {
	cfg, reg := testConfig(t)
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte("state_dir = \""+cfg.StateDir+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pod := &specs.Spec{Annotations: map[string]string{annotationCRISandboxID: "sbX"}}
	var aid vresource.AID
	for _, id := range []string{"a", "b"} {
		p, err := chainFor(cfg, reg, id, pod)
		if err != nil {
			t.Fatal(err)
		}
		if p.made {
			if err := chain.CreateTables(cfg, p.ch, 0o666); err != nil {
				t.Fatal(err)
			}
		}
		aid = p.ch.AID
		bundle := t.TempDir()
		if err := writeBundleState(bundle, bundleState{AID: aid, Owned: p.owned, Pod: p.pod, Config: path}); err != nil {
			t.Fatal(err)
		}
		if err := cleanupBundle(bundle); err != nil {
			t.Fatal(err)
		}
		if _, err := reg.Get(aid.String()); err != nil {
			t.Fatalf("after container %s's bundle: %v", id, err)
		}
	}
	// Another pod's sandbox, and one whose name a chain of another pod took.
	squatter, err := register(cfg, reg, oci.PodChainName("sbY"), vresource.Owner{Pid: os.Getpid(), Kind: OwnerKind}, member{sandbox: "sbZ"})
	if err != nil {
		t.Fatal(err)
	}
	for _, sandbox := range []string{"sbW", "sbY", "sbX", "sbX"} {
		bundle := t.TempDir()
		if err := writeBundleState(bundle, bundleState{Sandbox: sandbox, Config: path}); err != nil {
			t.Fatal(err)
		}
		if err := cleanupBundle(bundle); err != nil {
			t.Fatalf("sandbox %s: %v", sandbox, err)
		}
	}
	if _, err := reg.Get(aid.String()); !errors.Is(err, vresource.ErrUnknownChain) {
		t.Errorf("pod sbX's chain %s after its sandbox: %v", aid, err)
	}
	if _, err := os.Stat(chain.Dir(cfg.StateDir, aid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pod sbX's chain directory: %v", err)
	}
	if _, err := reg.Get(squatter.AID.String()); err != nil {
		t.Errorf("chain %s of pod sbZ after sandbox sbY: %v", squatter.Name, err)
	}
}
