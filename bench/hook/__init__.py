"""Why: the folder the bench puts on the ``PYTHONPATH`` of the processes it watches (``sitecustomize``)."""
