package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxPassword bounds what is read from stdin; the server accepts at most 256 bytes, so anything
// longer is a mistake (a file piped in by accident) that should not be sent anywhere.
const maxPassword = 1024

var errNoPassword = errors.New("no password: pass --password or set P2CHAT_PASSWORD, or pipe it on stdin " +
	"(p2chat does not read passwords from a terminal, where they would be echoed)")

// passwordFlag declares --password on fs. Its default is not the environment's value, or help
// would print the password.
func passwordFlag(fs *flag.FlagSet) *string {
	return fs.String("password", "", "the account's `PASSWORD` (else env P2CHAT_PASSWORD, else one line on stdin; "+
		"a command line is visible to other users of the machine, the environment and stdin are not)")
}

// password returns the password for a command: the flag's value, else P2CHAT_PASSWORD, else one
// line of stdin. golang.org/x/term is not among our modules, so a terminal cannot be read
// without echo; rather than echo a password, p2chat refuses and says how to give it.
func (m *Main) password(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if v := m.Getenv("P2CHAT_PASSWORD"); v != "" {
		return v, nil
	}
	if m.Stdin == nil || isTerminal(m.Stdin) {
		return "", errNoPassword
	}
	line, err := bufio.NewReader(io.LimitReader(m.Stdin, maxPassword+1)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password from stdin: %w", err)
	}
	if len(line) > maxPassword {
		return "", fmt.Errorf("password on stdin is longer than %d bytes", maxPassword)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errNoPassword
	}
	return line, nil
}

// isTerminal guesses whether r is a terminal: a character device. /dev/null is one too, which
// is harmless: it holds no password either, and the error says how to give one.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
