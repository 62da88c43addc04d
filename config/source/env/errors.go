package env

import "errors"

var errReadOnly = errors.New("config: the env source cannot be written")
