"""Fulfilment of web orders: the staff's queues and pick lists, the steps from paid to
handed over or shipped, and the job that reminds about and cancels uncollected pickups."""
