"""The receding-horizon controller and the executors it drives."""
