package sqlstore

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

// Migration is one schema migration: the SQL of a file named
// NNNN_description.sql, which produces schema version NNNN.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// LoadMigrations reads the migrations in the folder "migrations" of fsys,
// in version order. Versions start at 1 and have no gaps; a file that
// breaks that, or is misnamed, is a bug in the build, so LoadMigrations
// panics, naming the store pkg.
func LoadMigrations(pkg string, fsys fs.FS) []Migration {
	entries, err := fs.ReadDir(fsys, "migrations")
	if err != nil {
		panic(fmt.Sprintf("%s: reading embedded migrations: %v", pkg, err))
	}
	var ms []Migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || path.Ext(name) != ".sql" {
			panic(fmt.Sprintf("%s: migration %q is not named NNNN_description.sql", pkg, name))
		}
		b, err := fs.ReadFile(fsys, "migrations/"+name)
		if err != nil {
			panic(fmt.Sprintf("%s: reading migration %q: %v", pkg, name, err))
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	for i, m := range ms {
		if m.Version != i+1 {
			panic(fmt.Sprintf("%s: migration %q out of sequence: want version %d", pkg, m.Name, i+1))
		}
	}
	return ms
}
