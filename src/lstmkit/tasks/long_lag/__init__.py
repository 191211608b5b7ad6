"""Long time-lag problems (Hochreiter and Schmidhuber, 1997): the generators and the experiment runner."""
