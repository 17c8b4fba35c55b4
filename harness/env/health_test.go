package env

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func TestCheckBackoff(t *testing.T) {
	ms := time.Millisecond
	want := []time.Duration{50 * ms, 75 * ms, 112500 * time.Microsecond, 168750 * time.Microsecond, 253125 * time.Microsecond, 379687500 * time.Nanosecond, 500 * ms, 500 * ms}
	b := newBackoff()
	var got []time.Duration
	for range want {
		got = append(got, b.Next())
	}
	if !slices.Equal(got, want) {
		t.Errorf("schedule = %v, want %v", got, want)
	}
}

// A slow check earns a pause as long as it took, up to afterCap; a quick
// one the schedule's.
func TestCheckBackoffAfterSlowCheck(t *testing.T) {
	ms := time.Millisecond
	b := newBackoff()
	for _, tt := range []struct{ took, want time.Duration }{
		{10 * ms, 50 * ms},             // quicker than the schedule
		{900 * ms, 900 * ms},           // slower: its own time
		{time.Minute, afterCap},        // an overrun: capped
		{0, 168750 * time.Microsecond}, // the schedule went on meanwhile
	} {
		if got := b.After(tt.took); got != tt.want {
			t.Errorf("After(%v) = %v, want %v", tt.took, got, tt.want)
		}
	}
}

// At most as many checks as there are slots hold one at once; a released
// slot is free again.
func TestCheckSlots(t *testing.T) {
	s := make(slots, 2)
	for i := range 2 {
		if !s.take() {
			t.Fatalf("slot %d of 2 not free", i+1)
		}
	}
	if s.take() {
		t.Fatal("a third slot of 2 was free")
	}
	s.release()
	if !s.take() {
		t.Error("a released slot is not free again")
	}
}

func TestHealthArgv(t *testing.T) {
	tests := []struct {
		name  string
		test  []string
		shell []string
		want  []string
	}{
		{"CMD runs its arguments", []string{"CMD", "pg_isready", "-h", "127.0.0.1"}, nil, []string{"pg_isready", "-h", "127.0.0.1"}},
		{"CMD ignores the shell", []string{"CMD", "true"}, []string{"/bin/bash", "-c"}, []string{"true"}},
		{"CMD-SHELL runs /bin/sh -c", []string{"CMD-SHELL", "test -f /tmp/ready && echo ok"}, nil, []string{"/bin/sh", "-c", "test -f /tmp/ready && echo ok"}},
		{"CMD-SHELL runs the image's SHELL", []string{"CMD-SHELL", "echo $0"}, []string{"/bin/bash", "-eu", "-c"}, []string{"/bin/bash", "-eu", "-c", "echo $0"}},
		{"NONE runs nothing", []string{"NONE"}, nil, nil},
		{"inherited runs nothing", []string{}, nil, nil},
		{"CMD without a command", []string{"CMD"}, nil, nil},
		{"unknown form", []string{"EXEC", "x"}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HealthArgv(tt.test, tt.shell); !slices.Equal(got, tt.want) {
				t.Errorf("HealthArgv(%q, %q) = %q, want %q", tt.test, tt.shell, got, tt.want)
			}
		})
	}
	// The argv is a copy: running it never changes the plan.
	test := []string{"CMD-SHELL", "true"}
	HealthArgv(test, nil)[2] = "changed"
	if test[1] != "true" {
		t.Error("HealthArgv shares the plan's slice")
	}
}

func TestLastHealth(t *testing.T) {
	t0 := time.Now()
	engine := &container.Health{Log: []*container.HealthcheckResult{
		{End: t0, ExitCode: 1, Output: "old"},
		{End: t0.Add(time.Second), ExitCode: 1, Output: "engine says no"},
	}}
	own := &checkResult{exitCode: 2, output: "harness says no", end: t0.Add(2 * time.Second)}
	older := &checkResult{exitCode: 2, output: "harness said no", end: t0}
	tests := []struct {
		name   string
		engine *container.Health
		own    *checkResult
		want   string
	}{
		{"neither", nil, nil, ""},
		{"engine only", engine, nil, "exit 1: engine says no"},
		{"harness only", nil, own, "exit 2: harness says no"},
		{"harness newer", engine, own, "exit 2: harness says no"},
		{"engine newer", engine, older, "exit 1: engine says no"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := lastHealth(tt.engine, tt.own); got != tt.want {
				t.Errorf("lastHealth = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCappedOutput(t *testing.T) {
	c := &capped{max: 5}
	for _, s := range []string{"abc", "defgh", "ij"} {
		if n, err := c.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := c.String(); got != "abcde" {
		t.Errorf("kept %q, want %q", got, "abcde")
	}
	if strings.Contains(c.String(), "f") {
		t.Error("kept more than max")
	}
}
