package vresource

import "testing"

func TestParseAID(t *testing.T) {
	tests := []struct {
		in   string
		want AID
		ok   bool
	}{
		{"1", 1, true},
		{"18446744073709551615", 1<<64 - 1, true},
		{"0", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"0x10", 0, false},
		{"18446744073709551616", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseAID(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseAID(%q) = %d, %v; want %d, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
		if tt.ok && got.String() != tt.in {
			t.Errorf("AID %d prints as %q, want %q", got, got.String(), tt.in)
		}
	}
}

func TestResourceTypeNames(t *testing.T) {
	tests := []struct {
		rt   ResourceType
		name string
	}{
		{PID, "pid"}, {Sem, "sem"}, {Shm, "shm"}, {Msg, "msg"}, {IPCKey, "ipckey"},
	}
	for i, tt := range tests {
		if uint32(tt.rt) != uint32(i) {
			t.Errorf("%s is type %d, want %d (the on-disk order)", tt.name, tt.rt, i)
		}
		if tt.rt.String() != tt.name {
			t.Errorf("type %d prints as %q, want %q", tt.rt, tt.rt.String(), tt.name)
		}
		if got, err := ParseResourceType(tt.name); got != tt.rt || err != nil {
			t.Errorf("ParseResourceType(%q) = %d, %v", tt.name, got, err)
		}
	}
	if s := ResourceType(5).String(); s != "type(5)" {
		t.Errorf("type 5 prints as %q", s)
	}
	if _, err := ParseResourceType("PID"); err == nil {
		t.Error("ParseResourceType accepts PID")
	}
}
