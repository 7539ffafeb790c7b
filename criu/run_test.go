package criu

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// TestRunErrors checks that a failed CRIU call says why, with the lines of
// CRIU's log that matter.
func TestRunErrors(t *testing.T) {
	needCRIU(t)
	ctx := context.Background()
	tests := []struct {
		name     string
		run      func(dir string) error
		want     error  // errors.Is
		wantLine string // in LogError.Tail
	}{
		{"dump of a pid no process has", func(dir string) error {
			return Dump(ctx, DumpOpts{Criu: stackCRIU, Pid: 4000000, ImageDir: dir})
		}, nil, "Dumping FAILED."},
		{"restore of an empty directory", func(dir string) error {
			_, err := Restore(ctx, dir, RestoreOpts{Criu: stackCRIU})
			return err
		}, nil, "Unexpected EOF on (empty-image)"},
		{"missing criu binary", func(dir string) error {
			return Dump(ctx, DumpOpts{Criu: "/nonexistent/criu", Pid: 1, ImageDir: dir})
		}, ErrNoCRIU, ""},
		{"cancelled context", func(dir string) error {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := Restore(cctx, dir, RestoreOpts{Criu: stackCRIU})
			return err
		}, context.Canceled, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run(t.TempDir())
			if err == nil {
				t.Fatal("no error")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("%v, want %v", err, tc.want)
			}
			if tc.wantLine == "" {
				return
			}
			var logErr *LogError
			if !errors.As(err, &logErr) {
				t.Fatalf("%v: not a *LogError", err)
			}
			if !strings.Contains(strings.Join(logErr.Tail, "\n"), tc.wantLine) {
				t.Errorf("log tail %q lacks %q", logErr.Tail, tc.wantLine)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	needCRIU(t)
	v, err := Version(stackCRIU)
	if err != nil {
		t.Fatal(err)
	}
	if v != 40201 {
		t.Errorf("version %d, want 40201 (the stack's CRIU 4.2.1)", v)
	}
}
