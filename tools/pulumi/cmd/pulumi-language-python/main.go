// Command pulumi-language-python is the Python language host this project builds for the
// Pulumi engine.
//
// Pulumi's own host is the module
// github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, which the Go module
// proxy reachable from the project's machines refuses (403 at every version). This host
// runs a program the way Pulumi's does: Pulumi's own pulumi-language-python-exec script
// (module sdk/v3, installed beside this binary by scripts/install-pulumi.sh) under the
// interpreter that Pulumi's python/toolchain package resolves from Pulumi.yaml's runtime
// options. It serves what preview, up, refresh, destroy and `pulumi about` ask of a
// language host, and RunPlugin, which is how the engine starts a Python policy pack
// (`pulumi preview --policy-pack DIR`); code generation, templates, packing, `pulumi
// install` and plugin discovery from installed packages are left unimplemented
// (docs/engine.md says why).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// execScript is the name of Pulumi's runner script; Pulumi's host finds it the same way.
const execScript = "pulumi-language-python-exec"

// bailExitCode is the exec script's "error already shown to the user" exit code.
const bailExitCode = 32

type host struct {
	pulumirpc.UnimplementedLanguageRuntimeServer
	engineAddress string
	execPath      string
}

func main() {
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: pulumi-language-python ENGINE_ADDRESS (started by the pulumi CLI)")
		os.Exit(2)
	}
	execPath, err := findExecScript()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := &host{engineAddress: flag.Arg(0), execPath: execPath}

	// Exit when the engine goes away, as every Pulumi plugin does.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = rpcutil.Healthcheck(ctx, h.engineAddress, 5*time.Minute, cancel) }()

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancelChannel(ctx),
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, h)
			return nil
		},
		Options: rpcutil.OpenTracingServerInterceptorOptions(nil),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: could not serve: %v\n", err)
		os.Exit(1)
	}
	// The engine reads the port from the first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-language-python: %v\n", err)
		os.Exit(1)
	}
}

func cancelChannel(ctx context.Context) chan bool {
	ch := make(chan bool)
	go func() {
		<-ctx.Done()
		close(ch)
	}()
	return ch
}

// findExecScript looks beside the real binary (symlinks resolved), where the install puts it.
func findExecScript() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	path := filepath.Join(filepath.Dir(self), execScript)
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("pulumi-language-python: %s is missing beside %s: "+
			"run scripts/install-pulumi.sh again", execScript, self)
	}
	return path, nil
}

// resolveToolchain reads Pulumi.yaml's runtime options (toolchain, virtualenv) as Pulumi's
// own host does and returns the matching python/toolchain.
func resolveToolchain(info *pulumirpc.ProgramInfo) (toolchain.Toolchain, error) {
	if info == nil {
		return nil, errors.New("the engine sent no program information")
	}
	opts := toolchain.PythonOptions{
		Root:       info.GetRootDirectory(),
		ProgramDir: info.GetProgramDirectory(),
		Toolchain:  toolchain.Auto,
	}
	options := info.GetOptions().AsMap()
	if v, ok := options["virtualenv"].(string); ok {
		opts.Virtualenv = v
	}
	if v, ok := options["toolchain"].(string); ok {
		switch v {
		case "pip":
			opts.Toolchain = toolchain.Pip
		case "poetry":
			opts.Toolchain = toolchain.Poetry
		case "uv":
			opts.Toolchain = toolchain.Uv
		default:
			return nil, fmt.Errorf("runtime option toolchain: %q is not one of pip, poetry, uv", v)
		}
	}
	return toolchain.ResolveToolchain(opts)
}

func (h *host) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

// GetRequiredPackages reports no resource plugins: this project's only provider is the
// dynamic one (pulumi-resource-pulumi-python, bundled beside the CLI). A program that
// imports a package shipping a resource plugin needs Pulumi's own host.
func (h *host) GetRequiredPackages(
	context.Context, *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	return &pulumirpc.GetRequiredPackagesResponse{}, nil
}

// Run runs the program through Pulumi's exec script and reports its outcome to the engine.
func (h *host) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	tc, err := resolveToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return &pulumirpc.RunResponse{Error: err.Error() +
			" (create it with: bash scripts/venv.sh)"}, nil
	}
	config, err := json.Marshal(req.GetConfig())
	if err != nil {
		return nil, err
	}
	secretKeys, err := json.Marshal(req.GetConfigSecretKeys())
	if err != nil {
		return nil, err
	}
	info := req.GetInfo()
	program := filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())
	args := []string{
		"-u", h.execPath,
		"--monitor", req.GetMonitorAddress(),
		"--engine", h.engineAddress,
		"--project", req.GetProject(),
		"--stack", req.GetStack(),
		"--pwd", req.GetPwd(),
		"--dry_run", strconv.FormatBool(req.GetDryRun()),
		"--parallel", strconv.Itoa(int(req.GetParallel())),
		"--root_directory", info.GetRootDirectory(),
	}
	if org := req.GetOrganization(); org != "" {
		// Absent rather than empty: the SDK would take "" for an organization's name.
		args = append(args, "--organization", org)
	}
	args = append(args, program)
	args = append(args, req.GetArgs()...)
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return nil, err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env,
		"PULUMI_CONFIG="+string(config),
		"PULUMI_CONFIG_SECRET_KEYS="+string(secretKeys),
	)
	cmd.Dir = req.GetPwd()
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr

	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		return &pulumirpc.RunResponse{}, nil
	case errors.As(err, &exitErr) && exitErr.ExitCode() == bailExitCode:
		return &pulumirpc.RunResponse{Bail: true}, nil
	case errors.As(err, &exitErr):
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("Program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}, nil
	default:
		return &pulumirpc.RunResponse{Error: fmt.Sprintf("could not run the program: %v", err)}, nil
	}
}

// About answers `pulumi about` with the interpreter the program runs under.
func (h *host) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	tc, err := resolveToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	about, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: about.PythonExecutable,
		Version:    about.PythonVersion.String(),
		Metadata:   map[string]string{"host": "mem0infra (tools/pulumi)"},
	}, nil
}

// GetProgramDependencies lists the packages of the program's environment (`pulumi about`).
func (h *host) GetProgramDependencies(
	ctx context.Context, req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	tc, err := resolveToolchain(req.GetInfo())
	if err != nil {
		return nil, err
	}
	packages, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, err
	}
	deps := make([]*pulumirpc.DependencyInfo, 0, len(packages))
	for _, p := range packages {
		deps = append(deps, &pulumirpc.DependencyInfo{Name: p.Name, Version: p.Version})
	}
	return &pulumirpc.GetProgramDependenciesResponse{Dependencies: deps}, nil
}

// RuntimeOptionsPrompts asks nothing: Pulumi.yaml already names the toolchain.
func (h *host) RuntimeOptionsPrompts(
	context.Context, *pulumirpc.RuntimeOptionsRequest,
) (*pulumirpc.RuntimeOptionsResponse, error) {
	return &pulumirpc.RuntimeOptionsResponse{}, nil
}

// RunPlugin runs a plugin written in Python: the engine asks for it to start a policy pack
// whose PulumiPolicy.yaml names the python runtime (NewPolicyAnalyzer, pkg/resource/plugin).
// The plugin is the program directory run as a script (its __main__.py) under the toolchain
// of the plugin's own runtime options, with the engine's arguments and environment; its
// output goes back to the engine on the stream (the first stdout line is its gRPC port),
// then its exit code.
func (h *host) RunPlugin(
	req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer,
) error {
	ctx := server.Context()
	info := req.GetInfo()
	tc, err := resolveToolchain(info)
	if err != nil {
		return err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return fmt.Errorf("%s plugin in %s: %w", req.GetKind(), info.GetProgramDirectory(), err)
	}
	// -u: unbuffered, so the port line reaches the engine as soon as it is written.
	args := append([]string{"-u", filepath.Join(info.GetProgramDirectory(), info.GetEntryPoint())},
		req.GetArgs()...)
	cmd, err := tc.Command(ctx, args...)
	if err != nil {
		return err
	}
	cmd.Env = pluginEnv(req.GetEnv(), cmd.Env)
	cmd.Dir = req.GetPwd()
	send := &streamSender{server: server}
	cmd.Stdout = writerFunc(func(p []byte) error {
		return send.send(&pulumirpc.RunPluginResponse{
			Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: append([]byte(nil), p...)}})
	})
	cmd.Stderr = writerFunc(func(p []byte) error {
		return send.send(&pulumirpc.RunPluginResponse{
			Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: append([]byte(nil), p...)}})
	})

	var code int32
	err = cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = int32(exitErr.ExitCode())
	default:
		return fmt.Errorf("could not run the %s plugin in %s: %w", req.GetKind(),
			info.GetProgramDirectory(), err)
	}
	return send.send(&pulumirpc.RunPluginResponse{
		Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

// pluginEnv is the engine's environment for the plugin (the process's own when the engine
// sent none), with the virtual environment's PATH and VIRTUAL_ENV from the toolchain's
// command on top.
func pluginEnv(engine, toolchainEnv []string) []string {
	env := engine
	if len(env) == 0 {
		env = os.Environ()
	}
	env = append([]string(nil), env...)
	for _, kv := range toolchainEnv {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "VIRTUAL_ENV=") {
			env = append(env, kv) // later entries win in os/exec
		}
	}
	return env
}

// streamSender serialises sends: a gRPC stream takes one Send at a time, and the plugin's
// stdout and stderr are copied by two goroutines.
type streamSender struct {
	mu     sync.Mutex
	server pulumirpc.LanguageRuntime_RunPluginServer
}

func (s *streamSender) send(msg *pulumirpc.RunPluginResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.server.Send(msg)
}

type writerFunc func([]byte) error

func (f writerFunc) Write(p []byte) (int, error) {
	if err := f(p); err != nil {
		return 0, err
	}
	return len(p), nil
}
