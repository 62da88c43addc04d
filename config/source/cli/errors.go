package cli

import "errors"

var errReadOnly = errors.New("config: the cli source cannot be written")
