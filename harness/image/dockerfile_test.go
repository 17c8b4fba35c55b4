package image

import (
	"reflect"
	"strings"
	"testing"
)

func TestBaseImages(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		args       map[string]string
		target     string
		want       []string
		wantErr    string // a part of the error; empty for none
	}{
		{name: "one image", dockerfile: "FROM debian:bookworm-slim\nRUN true\n", want: []string{"debian:bookworm-slim"}},
		{name: "continuation line", dockerfile: "FROM \\\n  debian:bookworm-slim\nRUN true\n", want: []string{"debian:bookworm-slim"}},
		{name: "comment inside a continuation", dockerfile: "FROM \\\n# the base\n  debian:bookworm-slim AS base\n", want: []string{"debian:bookworm-slim"}},
		{name: "global ARG names the base", dockerfile: "ARG BASE=debian:bookworm-slim\nFROM ${BASE}\n", want: []string{"debian:bookworm-slim"}},
		{name: "global ARG without braces", dockerfile: "ARG BASE=debian:bookworm-slim\nFROM $BASE\n", want: []string{"debian:bookworm-slim"}},
		{name: "build argument overrides the ARG default", dockerfile: "ARG BASE=debian:bookworm-slim\nFROM ${BASE}\n",
			args: map[string]string{"BASE": "rehearse/base:1"}, want: []string{"rehearse/base:1"}},
		{name: "ARG default built from another ARG", dockerfile: "ARG TAG=bookworm-slim\nARG BASE=debian:${TAG}\nFROM ${BASE}\n",
			args: map[string]string{"TAG": "trixie-slim"}, want: []string{"debian:trixie-slim"}},
		{name: "build argument without an ARG is not used", dockerfile: "FROM ${BASE:-debian:bookworm-slim}\n",
			args: map[string]string{"BASE": "rehearse/base:1"}, want: []string{"debian:bookworm-slim"}},
		{name: "an ARG after the first FROM does not reach FROM", dockerfile: "FROM debian:bookworm-slim AS a\nARG BASE=rehearse/base:1\nFROM ${BASE:-debian:trixie-slim}\n",
			want: []string{"debian:bookworm-slim", "debian:trixie-slim"}},
		{name: "stage, not an image", dockerfile: "FROM --platform=linux/amd64 golang:1.26 AS build\nRUN go build\nFROM build AS test\nFROM scratch\nCOPY --from=build /x /x\n",
			want: []string{"golang:1.26"}},
		{name: "stage names ignore case", dockerfile: "FROM golang:1.26 AS Build\nFROM BUILD\n", want: []string{"golang:1.26"}},
		{name: "stage named through an ARG", dockerfile: "ARG FROM_STAGE=build\nFROM golang:1.26 AS build\nFROM ${FROM_STAGE}\n", want: []string{"golang:1.26"}},
		{name: "scratch", dockerfile: "FROM scratch\nCOPY x /x\n", want: nil},
		{name: "comments", dockerfile: "# FROM alpine:3\nFROM debian:bookworm-slim\n# from busybox\n", want: []string{"debian:bookworm-slim"}},
		{name: "lowercase from", dockerfile: "from debian:bookworm-slim as base\nfrom base\n", want: []string{"debian:bookworm-slim"}},
		{name: "FROM inside a RUN continuation", dockerfile: "FROM debian:bookworm-slim\nRUN echo hello \\\n  from here\n", want: []string{"debian:bookworm-slim"}},
		{name: "FROM inside a heredoc", dockerfile: "FROM debian:bookworm-slim\nRUN <<EOF\ncat >/Dockerfile.inner <<INNER\nFROM alpine:3\nINNER\nEOF\n", want: []string{"debian:bookworm-slim"}},
		{name: "escape directive", dockerfile: "# escape=`\nFROM `\n  debian:bookworm-slim\n", want: []string{"debian:bookworm-slim"}},
		{name: "same image twice", dockerfile: "FROM debian:bookworm-slim AS a\nFROM debian:bookworm-slim AS b\n", want: []string{"debian:bookworm-slim"}},
		{name: "stages after the target are not built", dockerfile: "FROM debian:bookworm-slim AS app\nFROM rehearse/test-tools:1 AS test\n",
			target: "app", want: []string{"debian:bookworm-slim"}},
		{name: "unknown target", dockerfile: "FROM debian:bookworm-slim AS app\n", target: "ap", wantErr: `target stage "ap" not found`},
		{name: "blank base", dockerfile: "ARG BASE\nFROM ${BASE}\n", wantErr: "line 2: FROM ${BASE}: the base image name is blank"},
		{name: "FROM with two words", dockerfile: "FROM debian:bookworm-slim extra\n", wantErr: "line 1"},
		{name: "no FROM", dockerfile: "ARG X=1\n", wantErr: "no FROM"},
		{name: "unterminated heredoc", dockerfile: "FROM debian:bookworm-slim\nRUN <<EOF\necho\n", wantErr: "line 2: unterminated heredoc"},
		{name: "unknown instruction", dockerfile: "FROM debian:bookworm-slim\nFORM x\n", wantErr: "line 2: unknown instruction: FORM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := baseImages(tt.dockerfile, tt.args, tt.target)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("baseImages = %v, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("baseImages = %q, want %q", got, tt.want)
			}
		})
	}
}
