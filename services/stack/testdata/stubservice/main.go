// Command stubservice stands in for a business service (or the provider)
// in the launcher's tests: it takes the flags qlstack passes, creates its
// database through --dsn as the services do, records its command line
// next to the secrets file, and answers every request with its own name,
// the path and the X-User-Id it received.
package main

import (
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-sql-driver/mysql"
)

func main() {
	name := filepath.Base(os.Args[0])
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	listen := fs.String("listen", "", "")
	dsn := fs.String("dsn", "", "")
	secrets := fs.String("secrets", "", "")
	fs.String("namesrv", "", "")
	fs.String("provider", "", "")
	fs.String("public-url", "", "")
	fs.Duration("order-timeout", 0, "")
	fs.Int("seckill-order-rate", 0, "")
	fs.Duration("ship-after", 0, "")
	_ = fs.Parse(os.Args[1:])
	if err := createDB(*dsn); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	args, _ := json.Marshal(os.Args[1:])
	if err := os.WriteFile(filepath.Join(filepath.Dir(*secrets), "stub-"+name+".json"), args, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
	err := http.ListenAndServe(*listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"service": name, "path": r.URL.Path, "user": strings.Join(r.Header.Values("X-User-Id"), ",")})
	}))
	fmt.Fprintln(os.Stderr, name+":", err)
	os.Exit(1)
}

// createDB creates the DSN's database, as every service does at start.
func createDB(dsn string) error {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return err
	}
	name := cfg.DBName
	cfg.DBName = ""
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE IF NOT EXISTS `" + name + "`"); err != nil {
		return err
	}
	return nil
}
