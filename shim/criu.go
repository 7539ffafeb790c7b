package shim

import (
	"bytes"
	"fmt"
	"os/exec"
	"strings"

	"github.com/containerd/containerd/v2/pkg/sys/reaper"
)

// criuVersion asks the criu runc runs (the config's, else the stack's,
// else criu on PATH) for its version, as 40201 for 4.2.1.  It runs criu
// --version through the shim's reaper, which reaps every child of the
// shim: go-criu's own wait would find its child gone.
func criuVersion(path string) (int, error) {
	if path == "" {
		path = "criu"
	}
	cmd := exec.Command(path, "--version")
	var out bytes.Buffer
	cmd.Stdout = &out
	ec, err := reaper.Default.Start(cmd)
	if err != nil {
		return 0, fmt.Errorf("%s --version: %w", path, err)
	}
	if status, err := reaper.Default.Wait(cmd, ec); err != nil || status != 0 {
		return 0, fmt.Errorf("%s --version: exit status %d, %v", path, status, err)
	}
	return parseCRIUVersion(out.String())
}

// parseCRIUVersion reads "Version: 4.2.1" (or "Version: 4.2") from criu
// --version.
func parseCRIUVersion(out string) (int, error) {
	for _, line := range strings.Split(out, "\n") {
		v, ok := strings.CutPrefix(line, "Version: ")
		if !ok {
			continue
		}
		var major, minor, sub int
		if n, _ := fmt.Sscanf(strings.TrimSpace(v), "%d.%d.%d", &major, &minor, &sub); n >= 2 {
			return major*10000 + minor*100 + sub, nil
		}
	}
	return 0, fmt.Errorf("criu --version said %q, no version", out)
}
