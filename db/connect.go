package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ConnectTimeout bounds a connection attempt unless the connection string
// sets connect_timeout itself.
const ConnectTimeout = 5 * time.Second

// ConnectErrorKind says what went wrong connecting.
type ConnectErrorKind int

const (
	// BadConnString: the URL or connection string cannot be parsed.
	BadConnString ConnectErrorKind = iota + 1
	// Unreachable: nothing answered at the address (refused, unknown
	// host, timeout, no socket).
	Unreachable
	// AuthFailed: the server rejected the user or the password.
	AuthFailed
	// NoDatabase: the database does not exist.
	NoDatabase
	// ConnectFailed: anything else the server or network said.
	ConnectFailed
)

// ConnectError is a failure to connect, explained in one line that never
// contains a password. The CLI exits with status 2 on it.
type ConnectError struct {
	Kind ConnectErrorKind
	Msg  string
	err  error
}

func (e *ConnectError) Error() string { return e.Msg }

// Unwrap returns the underlying pgx error (nil for a bad connection string,
// whose pgx error may quote the string).
func (e *ConnectError) Unwrap() error { return e.err }

// ConnString returns the connection string to use: flag (--db) if set,
// else $DATABASE_URL, else "" (pgx then reads the PG* variables and
// ~/.pgpass), with a short description of where it came from.
func ConnString(flag string) (connString, from string) {
	if flag != "" {
		return flag, "--db"
	}
	if env := os.Getenv("DATABASE_URL"); env != "" {
		return env, "DATABASE_URL"
	}
	return "", "the PG* environment variables"
}

// Connect opens a connection to the database named by dbURL (--db), else
// $DATABASE_URL, else the PG* environment variables and ~/.pgpass. Errors
// are *ConnectError.
func Connect(ctx context.Context, dbURL string) (*pgx.Conn, error) {
	connString, from := ConnString(dbURL)
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, &ConnectError{Kind: BadConnString, Msg: badConnStringMsg(connString, from, err)}
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = ConnectTimeout
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "cutover"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, classify(cfg, connString, err)
	}
	return conn, nil
}

// Address describes where a configuration points: "host:port", or the
// socket path for a Unix-domain socket.
func Address(cfg *pgconn.Config) string {
	if strings.HasPrefix(cfg.Host, "/") {
		return cfg.Host + "/.s.PGSQL." + strconv.Itoa(int(cfg.Port))
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
}

// Describe names a connection for humans and plans: "host:port/dbname",
// never with a password.
func Describe(cfg *pgconn.Config) string {
	return Address(cfg) + "/" + cfg.Database
}

func classify(cfg *pgx.ConnConfig, connString string, err error) *ConnectError {
	addr := Address(&cfg.Config)
	ce := &ConnectError{err: err}
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "28P01": // invalid_password
			ce.Kind = AuthFailed
			ce.Msg = fmt.Sprintf("authentication failed for user %s on %s (check the password / .pgpass)", cfg.User, addr)
		case "28000": // invalid_authorization_specification: pg_hba, unknown role
			ce.Kind = AuthFailed
			ce.Msg = fmt.Sprintf("PostgreSQL at %s rejected user %s: %s", addr, cfg.User, pgErr.Message)
		case "3D000": // invalid_catalog_name
			ce.Kind = NoDatabase
			ce.Msg = fmt.Sprintf("database %s does not exist on %s", cfg.Database, addr)
		case "57P03": // cannot_connect_now
			ce.Kind = Unreachable
			ce.Msg = fmt.Sprintf("PostgreSQL at %s is not accepting connections: %s", addr, pgErr.Message)
		default:
			ce.Kind = ConnectFailed
			ce.Msg = fmt.Sprintf("PostgreSQL at %s refused the connection: %s", addr, pgErr.Message)
		}
	case errors.Is(err, syscall.ECONNREFUSED):
		ce.Kind = Unreachable
		ce.Msg = fmt.Sprintf("cannot reach PostgreSQL at %s: connection refused — is the server running?", addr)
	case errors.Is(err, syscall.ENOENT) && strings.HasPrefix(cfg.Host, "/"):
		ce.Kind = Unreachable
		ce.Msg = fmt.Sprintf("cannot reach PostgreSQL at %s: no such socket — is the server running?", addr)
	case errors.As(err, &dnsErr):
		ce.Kind = Unreachable
		ce.Msg = fmt.Sprintf("cannot reach PostgreSQL at %s: unknown host %s", addr, cfg.Host)
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		ce.Kind = Unreachable
		ce.Msg = fmt.Sprintf("cannot reach PostgreSQL at %s: no answer within %s", addr, cfg.ConnectTimeout)
	case errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH):
		ce.Kind = Unreachable
		ce.Msg = fmt.Sprintf("cannot reach PostgreSQL at %s: no route to host", addr)
	default:
		ce.Kind = ConnectFailed
		ce.Msg = fmt.Sprintf("cannot connect to PostgreSQL at %s: %s", addr, oneLine(innermost(err)))
	}
	ce.Msg = scrub(ce.Msg, connString, cfg.Password)
	return ce
}

// innermost returns the message of the deepest wrapped error, without the
// prefixes pgx stacks on it.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// badConnStringMsg explains an unparsable connection string without
// quoting its password. pgx's own error quotes the string (redacted on a
// best-effort basis) and may wrap net/url's error, which quotes it raw: only
// the innermost reason is kept, scrubbed of anything that looks like the
// password.
func badConnStringMsg(connString, from string, err error) string {
	reason := innermost(err)
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		reason = urlErr.Err.Error()
	}
	// pgx quotes the (redacted) string again: "cannot parse `...`: why".
	if rest, ok := strings.CutPrefix(reason, "cannot parse `"); ok {
		if _, why, ok := strings.Cut(rest, "`: "); ok {
			reason = why
		}
	}
	msg := fmt.Sprintf("invalid connection string from %s (%s): %s", from, Redact(connString), oneLine(reason))
	return scrub(msg, connString, "")
}

// scrub replaces every password that connString or the environment holds,
// and password, with xxxxx: the last guard of the promise that no error
// prints a password.
func scrub(msg, connString, password string) string {
	pws := append(passwords(connString), password, os.Getenv("PGPASSWORD"))
	for _, pw := range pws {
		if pw != "" {
			msg = strings.ReplaceAll(msg, pw, redacted)
		}
	}
	return msg
}

const redacted = "xxxxx"

// Redact returns the connection string (URL or key=value form) with any
// password replaced by xxxxx. It is best effort on malformed input and errs
// on the side of hiding too much.
func Redact(connString string) string {
	if isURL(connString) {
		return redactURL(connString)
	}
	var b strings.Builder
	for _, kv := range keywordValues(connString) {
		b.WriteString(kv.pre)
		if kv.key == "password" {
			b.WriteString(redacted)
		} else {
			b.WriteString(kv.raw)
		}
	}
	return b.String()
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://")
}

// redactURL hides the password of the userinfo part and any password=
// query parameter.
func redactURL(s string) string {
	red, _ := splitURLPasswords(s)
	return red
}

// splitURLPasswords returns s redacted and the raw texts it hid.
func splitURLPasswords(s string) (string, []string) {
	var hid []string
	schemeEnd := strings.Index(s, "://") + 3
	rest := s[schemeEnd:]
	// The userinfo ends at the last "@": a password may hold a raw "@", "/"
	// or "?", so "@" in a query parameter makes this hide too much, never
	// too little.
	at := strings.LastIndex(rest, "@")
	if at >= 0 {
		if colon := strings.Index(rest[:at], ":"); colon >= 0 {
			hid = append(hid, rest[colon+1:at])
			rest = rest[:colon+1] + redacted + rest[at:]
			at = colon + 1 + len(redacted)
		}
	}
	from := max(at, 0)
	if q := strings.Index(rest[from:], "?"); q >= 0 {
		q += from
		params := strings.Split(rest[q+1:], "&")
		for i, p := range params {
			if k, v, ok := strings.Cut(p, "="); ok && k == "password" {
				hid = append(hid, v)
				params[i] = "password=" + redacted
			}
		}
		rest = rest[:q+1] + strings.Join(params, "&")
	}
	return s[:schemeEnd] + rest, hid
}

// passwords returns the password values a connection string holds, raw and
// decoded.
func passwords(connString string) []string {
	var out []string
	if isURL(connString) {
		_, out = splitURLPasswords(connString)
		for _, raw := range out {
			if dec, err := url.QueryUnescape(raw); err == nil && dec != raw {
				out = append(out, dec)
			}
		}
		return out
	}
	for _, kv := range keywordValues(connString) {
		if kv.key == "password" {
			out = append(out, kv.raw, kv.value)
		}
	}
	return out
}

// keywordValue is one "key = value" pair of a libpq key/value connection
// string; pre is the text before the value (spaces, key, "="), raw the value
// as written, value its meaning.
type keywordValue struct {
	pre, key, raw, value string
}

// keywordValues splits a key/value connection string the way libpq does
// (values may be single-quoted, with backslash escapes). Text it cannot
// split ends up in the last pair's pre, unchanged.
func keywordValues(s string) []keywordValue {
	var out []keywordValue
	i := 0
	for i < len(s) {
		start := i
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
		k := i
		for i < len(s) && s[i] != '=' && s[i] != ' ' {
			i++
		}
		key := s[k:i]
		for i < len(s) && s[i] == ' ' {
			i++
		}
		if i >= len(s) || s[i] != '=' {
			out = append(out, keywordValue{pre: s[start:]})
			return out
		}
		i++
		for i < len(s) && s[i] == ' ' {
			i++
		}
		pre := s[start:i]
		v := i
		var value strings.Builder
		if i < len(s) && s[i] == '\'' {
			i++
			for i < len(s) && s[i] != '\'' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				value.WriteByte(s[i])
				i++
			}
			if i < len(s) {
				i++
			}
		} else {
			for i < len(s) && s[i] != ' ' {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				value.WriteByte(s[i])
				i++
			}
		}
		out = append(out, keywordValue{pre: pre, key: key, raw: s[v:i], value: value.String()})
	}
	return out
}
