"""The scheduler's pure decision core: data in, decisions out, time passed in: one thread
applies (state, event) → (new state, actions), and the shell performs the actions."""
