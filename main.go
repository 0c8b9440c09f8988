// Command cutover plans zero-downtime PostgreSQL schema changes. The
// commands live in package cli; main only connects them to the process.
package main

import (
	"os"

	"github.com/cutover/cutover/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
