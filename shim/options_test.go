package shim

import (
	"testing"

	runcoptions "github.com/containerd/containerd/api/types/runc/options"
	"google.golang.org/protobuf/proto"

	"github.com/vrid/vrid/config"
)

// containerd's runc options win; [runc] of config.toml fills what they
// leave empty, and stands alone when there are none.
func TestRuncOptions(t *testing.T) {
	full := &runcoptions.Options{BinaryName: "/opt/runc", Root: "/run/r", SystemdCgroup: true}
	tests := []struct {
		name       string
		runc       *runcoptions.Options // containerd's; nil for none
		cfgBinary  string
		cfgRoot    string
		want       *runcoptions.Options // nil for none
		sameObject bool                 // containerd's Any, unchanged
	}{
		{name: "none, no config", want: nil},
		{name: "none, config", cfgBinary: "/c/runc", cfgRoot: "/c/root", want: &runcoptions.Options{BinaryName: "/c/runc", Root: "/c/root"}},
		{name: "full, config", runc: full, cfgBinary: "/c/runc", cfgRoot: "/c/root", want: full, sameObject: true},
		{name: "restore path only, config", runc: &runcoptions.Options{CriuImagePath: "/ck"}, cfgBinary: "/c/runc", cfgRoot: "/c/root",
			want: &runcoptions.Options{CriuImagePath: "/ck", BinaryName: "/c/runc", Root: "/c/root"}},
		{name: "root only, config", runc: &runcoptions.Options{Root: "/run/r"}, cfgBinary: "/c/runc", cfgRoot: "/c/root",
			want: &runcoptions.Options{BinaryName: "/c/runc", Root: "/run/r"}},
		{name: "I/O owner of a user-namespace pod, config", runc: &runcoptions.Options{IoUid: 65536, IoGid: 65536}, cfgBinary: "/c/runc", cfgRoot: "/c/root",
			want: &runcoptions.Options{IoUid: 65536, IoGid: 65536, BinaryName: "/c/runc", Root: "/c/root"}},
		{name: "restore path only, no config", runc: &runcoptions.Options{CriuImagePath: "/ck"},
			want: &runcoptions.Options{CriuImagePath: "/ck"}, sameObject: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Runc.Binary, cfg.Runc.Root = tt.cfgBinary, tt.cfgRoot
			var o options
			if tt.runc != nil {
				o.Runc = mustAny(t, tt.runc)
			}
			a, err := o.runcOptions(&cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if a != nil {
					t.Fatalf("got %v, want no options", a)
				}
				return
			}
			if tt.sameObject != (a == o.Runc) {
				t.Errorf("containerd's options passed unchanged: %v, want %v", a == o.Runc, tt.sameObject)
			}
			var got runcoptions.Options
			if err := a.UnmarshalTo(&got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, tt.want) {
				t.Errorf("got %v, want %v", &got, tt.want)
			}
		})
	}
}
