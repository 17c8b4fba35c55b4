package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/rehearse/rehearse/harness/sandbox"
)

// A compose file that asks for a capability reaching the host kernel is
// refused, naming the file, line, key and service, and why.
func ExampleCheck() {
	file := "testdata/project/cap-sys-module.yaml"
	abs, _ := filepath.Abs(file)
	po, _ := cli.NewProjectOptions([]string{abs}, cli.WithWorkingDirectory(filepath.Dir(abs)), cli.WithName("p"))
	project, err := po.LoadProject(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	err = sandbox.Check(file, project)
	fmt.Println(err)
	fmt.Println(errors.Is(err, sandbox.ErrNotAllowed))
	// Output:
	// testdata/project/cap-sys-module.yaml:6: services.app.cap_add[1]: capability SYS_MODULE is not allowed in a rehearsal sandbox (service "app"): it loads kernel modules into the host
	// true
}

// An env file that leads out of the project (here through a link) is refused
// before compose-go would read it and quote it in an error.
func ExampleCheckReferences() {
	err := sandbox.CheckReferences("testdata/project/env-file-outside.yaml")
	var fe *sandbox.FileError
	if errors.As(err, &fe) {
		fmt.Println(fe.File, fe.Line, fe.Key, errors.Is(err, sandbox.ErrNotAllowed))
	}
	// Output:
	// testdata/project/env-file-outside.yaml 4 services.app.env_file[0] true
}
