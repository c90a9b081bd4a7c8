"""``avzsl-app``'s web application: the loaded models (``models``), uploads checked by content (``uploads``), the
videos folder (``browse``), ready class lists (``classlists``), the batch CSV (``tables``), the request-size limit
(``limits``) and the FastAPI server with its page (``server``, ``static/``)."""
