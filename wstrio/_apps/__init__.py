"""Applications that ship with wstrio: echo, the page and the chat."""
