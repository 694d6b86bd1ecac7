"""Gather events service: organizers publish and manage their events."""
