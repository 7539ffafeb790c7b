// Command containerd-shim-vrid-v1 is the containerd runtime
// io.containerd.vrid.v1: containerd's runc shim, with every container in
// an application chain (see package shim).
package main

import (
	"context"

	cshim "github.com/containerd/containerd/v2/pkg/shim"

	"github.com/vrid/vrid/shim"
)

func main() {
	shim.RegisterPlugin()
	cshim.RunShim(context.Background(), shim.NewManager())
}
