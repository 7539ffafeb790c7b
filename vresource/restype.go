package vresource

import "fmt"

// ResourceType is a kind of id the tables translate.  The values are the
// on-disk type numbers of vrid_abi.h (enum vrid_type) and never change.
type ResourceType uint32

const (
	PID    ResourceType = 0 // pids, tids, process groups and sessions
	Sem    ResourceType = 1 // System V semaphore set ids
	Shm    ResourceType = 2 // System V shared memory ids
	Msg    ResourceType = 3 // System V message queue ids
	IPCKey ResourceType = 4 // IPC keys: virtual key -> private system key

	// NumResourceTypes is the number of tables in a table file.
	NumResourceTypes = 5
)

// resourceNames are also the stems of the config keys ([tables] pid_slots).
var resourceNames = [NumResourceTypes]string{"pid", "sem", "shm", "msg", "ipckey"}

func (rt ResourceType) String() string {
	if rt < NumResourceTypes {
		return resourceNames[rt]
	}
	return fmt.Sprintf("type(%d)", uint32(rt))
}

func (rt ResourceType) valid() bool {
	return rt < NumResourceTypes
}

// ParseResourceType reads a name as printed by String.
func ParseResourceType(s string) (ResourceType, error) {
	for rt, name := range resourceNames {
		if s == name {
			return ResourceType(rt), nil
		}
	}
	return 0, fmt.Errorf("unknown resource type %q (want pid, sem, shm, msg or ipckey)", s)
}
