package shim

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
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
	return &cfg, reg
}

func TestChainFor(t *testing.T) {
	cfg, reg := testConfig(t)
	// A live chain to join: owned by this test process.
	owner, err := vresource.OwnerOf(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	web, err := chain.Register(cfg, reg, "web", owner)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         string
		annotation string // "" for none
		wantName   string
		wantAID    vresource.AID // 0: a new one
		wantOwned  bool
		wantErr    bool
	}{
		{name: "container id", id: "c1", wantName: "c1", wantOwned: true},
		{name: "numeric container id", id: "42", wantName: "ctr-42", wantOwned: true},
		{name: "new name", id: "c2", annotation: "db", wantName: "db", wantOwned: true},
		{name: "live name joins", id: "c3", annotation: "web", wantName: "web", wantAID: web.AID},
		{name: "aid joins", id: "c4", annotation: web.AID.String(), wantName: "web", wantAID: web.AID},
		{name: "unknown aid", id: "c5", annotation: "999", wantErr: true},
		{name: "bad name", id: "c6", annotation: "-x", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ann := map[string]string{}
			if tt.annotation != "" {
				ann[oci.AnnotationAID] = tt.annotation
			}
			ch, owned, err := chainFor(cfg, reg, tt.id, ann)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("chainFor succeeded: %+v", ch)
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
		ch, _, err := chainFor(cfg, reg, filepath.Base(bundle), nil)
		if err != nil {
			t.Fatal(err)
		}
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
