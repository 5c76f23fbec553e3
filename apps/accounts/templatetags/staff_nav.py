"""``{% staff_nav %}``: the top bar's links for the signed-in staff member (base.html)."""

from __future__ import annotations

from typing import Any

from django import template

from apps.accounts.navigation import staff_links

register = template.Library()


@register.inclusion_tag("includes/staff_nav.html", takes_context=True)
def staff_nav(context: template.Context) -> dict[str, Any]:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    path = getattr(request, "path", "")
    links = staff_links(user) if user is not None else []
    return {
        "links": [
            {"link": link, "current": path == link.url or path.startswith(link.url)}
            for link in links
        ]
    }
