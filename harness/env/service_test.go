package env

import (
	"context"
	"strings"
	"testing"
)

func TestExecOptionErrors(t *testing.T) {
	s := &Service{Name: "box"}
	if _, err := s.Exec(context.Background(), []string{"true"}, WithExecEnv("NOVALUE")); err == nil || !strings.Contains(err.Error(), `"NOVALUE": want KEY=VALUE`) {
		t.Errorf("WithExecEnv without =: %v", err)
	}
}
