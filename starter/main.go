// Command tutti is Tutti's API server and command-line tool:
//
//	tutti serve                      run the HTTP API
//	tutti migrate                    create/upgrade the database
//	tutti journey validate FILE      check a journey spec offline
//	tutti journey publish FILE       publish it through the API
//	tutti contact show ID            a contact, its consent and journeys
//	tutti contact find --email X     look a contact up
//	tutti contact erase ID           erase a contact on their request
//	tutti exit --contact ID --journey ID --reason TEXT
//	tutti consent ID --channel C --status S [--subscription T]
//	tutti suppress ID --reason R     suppress a contact (suppressions, unsuppress)
//	tutti why CONTACT JOURNEY STEP   why a step was (or was not) sent
//	tutti outbox [--contact ID]      what the sandbox "sent"
//	tutti unknown                    sends whose outcome is unknown
//	tutti events send --contact ID --name NAME [--id ID]
//	tutti codec new-key ID           a payload encryption key for TUTTI_CODEC_KEYS
//	tutti completion bash            a shell completion script (also zsh, fish, powershell)
//
// Everything but serve, migrate, journey validate and codec new-key is a client of the API
// at TUTTI_API_URL (client.go), so the CLI and the backend share one code path.
// root.go holds the command tree and exit codes, each command is in its own
// cmd_*.go file; `tutti help` and `tutti COMMAND --help` print the details.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], env{lookup: os.LookupEnv}, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
