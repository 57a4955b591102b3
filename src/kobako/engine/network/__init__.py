"""Container networking: bridge networks, veth endpoints, IPAM, published ports (nftables), /etc/hosts names.

Start at ``service.NetworkService`` (the facade); its docstring maps the modules. Nothing is imported here so
that ``kobako.engine.network.service`` loads only what a verb needs.
"""
