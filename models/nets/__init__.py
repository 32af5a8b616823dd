"""Networks: the dense digits CNN, the event-digits SCNN and the eye tracker."""
