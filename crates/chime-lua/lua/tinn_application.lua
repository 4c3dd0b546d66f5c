-- TINN's "Application" and "IOProcessor" modules: the same as require "tinn".
return require "tinn"
