alias ll="ls -l"
export EDITOR=nano
