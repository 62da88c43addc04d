package ca

// ValidityWindow exposes validityWindow to the tests, which issue expired certificates.
var ValidityWindow = validityWindow
