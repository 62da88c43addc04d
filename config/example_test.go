package config_test

import (
	"fmt"

	"github.com/seed-b3892490/micro/config"
	"github.com/seed-b3892490/micro/config/source"
	"github.com/seed-b3892490/micro/config/source/memory"
)

// A later source overrides an earlier one key by key; Get takes a default for keys no
// source has, and a watcher sees each change.
func Example() {
	defaults := memory.NewSource(memory.WithYAML([]byte("greeting: Hello\ndb:\n  host: localhost\n  port: 5432\n")))
	overrides := memory.NewSource(memory.WithJSON([]byte(`{"db":{"host":"db.internal"}}`)))

	conf, _ := config.NewConfig()
	defer conf.Close()
	if err := conf.Load(defaults, overrides); err != nil {
		fmt.Println(err)
		return
	}
	host, _ := conf.Get("db", "host")
	port, _ := conf.Get("db", "port")
	user, _ := conf.Get("db", "user")
	fmt.Println(host.String(""), port.Int(0), user.String("postgres"))

	var db struct {
		Host string `json:"host"`
		Port int    `json:"port"`
		Pool int    `json:"pool"`
	}
	db.Pool = 10 // a default Scan keeps, since no source sets it
	v, _ := conf.Get("db")
	_ = v.Scan(&db)
	fmt.Printf("%+v\n", db)

	w, _ := conf.Watch("greeting")
	defer w.Stop()
	defaults.(memory.Updater).Update(&source.ChangeSet{Format: "yaml", Data: []byte("greeting: Howdy\n")})
	g, _ := w.Next()
	fmt.Println(g.String(""))
	// Output:
	// db.internal 5432 postgres
	// {Host:db.internal Port:5432 Pool:10}
	// Howdy
}
