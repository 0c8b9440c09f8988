// Command cutover plans zero-downtime PostgreSQL schema changes. The
// commands live in package cli; main only connects them to the process.
package main

import (
	_ "embed"
	"os"

	"github.com/cutover/cutover/cli"
)

// pagilaSchema is the bundled sample the terminal UI plans against when no
// --schema is given: the pagila schema the tests use (see
// testdata/pagila/LICENSE.txt), embedded so a newcomer needs no file.
//
//go:embed testdata/pagila/schema.sql
var pagilaSchema string

// pagilaData is the sample's data, which cutover demo loads into its
// throwaway server.
//
//go:embed testdata/pagila/data.sql
var pagilaData string

// pagilaLicense is the sample's licence: copies of pagila carry it.
//
//go:embed testdata/pagila/LICENSE.txt
var pagilaLicense string

func main() {
	sample := cli.Sample{Source: "pagila sample", Dump: pagilaSchema, Data: pagilaData, License: pagilaLicense}
	os.Exit(cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, sample))
}
