"""The Content-Security-Policy header: only Glint's own files may run or style a page.

No inline script, no inline style, no eval, no framing, forms post only to Glint. Pages follow from
it: behaviour lives in ``glint.js``, styles in ``glint.css``, and htmx is told not to inject its
indicator ``<style>`` (``<meta name="htmx-config">`` in the base template; the indicator CSS is in
``glint.css``). Django's SecurityMiddleware and settings give the other headers (HSTS on HTTPS,
nosniff, Referrer-Policy) and XFrameOptionsMiddleware gives X-Frame-Options.
"""

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.setdefault("Content-Security-Policy", POLICY)
        return response
