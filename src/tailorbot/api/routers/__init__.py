"""One router per resource; :data:`tailorbot.api.app.ROUTERS` registers them."""
