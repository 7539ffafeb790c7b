package sysv

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/vrid/vrid/vresource"
)

// ObjectsOf lists the objects a chain's tables name, with their keys in
// both spaces, for Save.  An entry whose object is gone, or whose object
// has a key the chain never used (its id was reused by someone else), is
// not the chain's state and is left out.
func ObjectsOf(t *vresource.Tables) ([]Object, error) {
	var out []Object
	for _, rt := range []vresource.ResourceType{vresource.Sem, vresource.Shm, vresource.Msg} {
		for _, e := range t.Entries(rt) {
			skey, err := keyOf(rt, e.Sys)
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EIDRM) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("objects of chain %s: %s %d: %w", t.AID(), rt, e.Sys, err)
			}
			vkey := int32(ipcPrivate)
			if skey != ipcPrivate {
				var ok bool
				if vkey, ok = t.Reverse(vresource.IPCKey, skey); !ok {
					continue
				}
			}
			out = append(out, Object{Type: rt, VirtID: e.Virt, SysID: e.Sys, VirtKey: vkey, SysKey: skey})
		}
	}
	return out, nil
}

func keyOf(rt vresource.ResourceType, sys int32) (int32, error) {
	st, err := StatObject(rt, sys)
	return st.Key, err
}
